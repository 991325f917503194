// The config module's public face: load a node's YAML config into a validated,
// fully defaulted Config, or fail with every problem and its place in the file.

export { loadConfig, parseConfig, formatProblems, type ConfigProblem } from './load.js'
export { expandEnv, substituteEnv, type Env } from './env.js'
export { entryOf, type OneKey } from '../schema/one-key.js'
export { splitHostPort } from '../util/host-port.js'
export * from './schema.js'

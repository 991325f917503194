// Where step and output names meet their factories. Config validation already checked
// each entry's shape, so a factory gets its own section of the config as written.
import { BingeError } from '../errors.js'
import { createFileOutput } from './outputs/file.js'
import { createHttpOutput } from './outputs/http.js'
import { createStdoutOutput } from './outputs/stdout.js'
import { createFilter } from './steps/filter.js'
import { createMap } from './steps/map.js'
import type { Output, Step } from './types.js'

export interface OutputEntry {
  output: Output
  /** Write the envelope (default) or the event's data alone. */
  envelope: boolean
}

type StepFactory = (config: unknown) => Step
type OutputFactory = (config: Record<string, unknown>) => Output

const stepFactories: Record<string, StepFactory> = {
  filter: (expression) => createFilter(String(expression)),
  map: (expression) => createMap(String(expression)),
}

const outputFactories: Record<string, OutputFactory> = {
  stdout: () => createStdoutOutput(),
  file: (config) => createFileOutput({ path: String(config.path) }),
  http: (config) => createHttpOutput({ url: String(config.url), timeoutMs: Number(config.timeout), headers: config.headers as Record<string, string> }),
}

function single(entry: object, what: string): [string, unknown] {
  const pairs = Object.entries(entry)
  if (pairs.length !== 1) throw new BingeError('BINGE_CONFIG_INVALID', `${what} must have exactly one key`)
  return pairs[0] as [string, unknown]
}

export function buildStep(entry: object): Step {
  const [name, config] = single(entry, 'a step')
  const factory = stepFactories[name]
  if (!factory) throw new BingeError('BINGE_CONFIG_INVALID', `unknown step "${name}"`)
  return factory(config)
}

export function buildOutput(entry: object): OutputEntry {
  const [name, raw] = single(entry, 'an output')
  const factory = outputFactories[name]
  if (!factory) throw new BingeError('BINGE_CONFIG_INVALID', `unknown output "${name}"`)
  const config = (raw ?? {}) as Record<string, unknown>
  return { output: factory(config), envelope: config.envelope !== false }
}

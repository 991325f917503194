// What the deployment tests share: the repo's example configs, read the way users run
// them (locally with the defaults in the files, or with docker-compose.yml's
// environment), and docker-compose.yml itself, merge keys resolved.
//
// While the `window` step is being built it may not be registered yet. Then, and only
// then, a config that fails *only* with `unknown step "window"` is validated again with
// its window steps taken out, and the caller is told so (`tolerated`); any other problem
// still fails. Once `window` is registered this path is dead and the full files count.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { isMap, isSeq, parse, parseDocument } from 'yaml'
import { BingeError } from '../../src/errors.js'
import { expandEnv, parseConfig, stepSchemas, type Config, type ConfigProblem, type Env } from '../../src/config/index.js'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
export const meshConfigsDir = path.join(repoRoot, 'mesh-configs')

/** The package's `bin`: the bundled CLI users run (`npm start`, the Docker image). */
export function binPath(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { bin: { binge: string } }
  return path.join(repoRoot, pkg.bin.binge)
}

/** The CLI as `npx tsc -p tsconfig.json` builds it, which the process tests run (as test/support does). */
export const cliPath = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js')

/**
 * `built`, refusing it when missing or older than src/cli/ (the commands tested here):
 * a test of old code would prove nothing. Other modules are not compared, so edits
 * elsewhere in a shared tree do not fail these tests.
 */
export function requireBuilt(built: string, how: string): string {
  if (!fs.existsSync(built)) throw new Error(`${built} is missing: run \`${how}\` first`)
  const cli = path.join(repoRoot, 'src', 'cli')
  const newest = Math.max(
    ...fs
      .readdirSync(cli)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => fs.statSync(path.join(cli, f)).mtimeMs),
  )
  if (fs.statSync(built).mtimeMs < newest) throw new Error(`${built} is older than src/cli/: run \`${how}\` first`)
  return built
}

export const requireBuiltCli = (): string => requireBuilt(cliPath, 'npx tsc -p tsconfig.json')
export const requireBuiltBin = (): string => requireBuilt(binPath(), 'npm run build')

/** The node configs `binge mesh up mesh-configs` runs: name (file name without .yaml) -> path. */
export function meshConfigFiles(dir = meshConfigsDir): Map<string, string> {
  const files = fs
    .readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
  return new Map(files.map((f) => [f.replace(/\.ya?ml$/, ''), path.join(dir, f)]))
}

/** The test's environment without any BINGE_* variable, plus `extra`: what a fresh shell has. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BINGE_')) env[k] = v
  return { ...env, ...extra }
}

export const windowRegistered = (): boolean => Object.hasOwn(stepSchemas, 'window')

/** The YAML text with every `- window: ...` step removed from every pipeline. */
export function withoutWindowSteps(text: string): string {
  const doc = parseDocument(text)
  const pipelines = doc.get('pipelines')
  if (isMap(pipelines)) {
    for (const pair of pipelines.items) {
      const steps = isMap(pair.value) ? pair.value.get('steps') : undefined
      if (isSeq(steps)) steps.items = steps.items.filter((item) => !(isMap(item) && item.has('window')))
    }
  }
  return String(doc)
}

export interface LoadedExample {
  config: Config
  /** Set when the file only validated with its window steps taken out (see the top of this file). */
  tolerated?: string
}

const problemsOf = (err: unknown): ConfigProblem[] | undefined =>
  err instanceof BingeError && err.code === 'BINGE_CONFIG_INVALID' ? ((err.details?.problems ?? []) as ConfigProblem[]) : undefined

/** Validate a config file as `binge validate` does, with the window tolerance above. */
export function loadExample(file: string, env: Record<string, string | undefined>): LoadedExample {
  const text = fs.readFileSync(file, 'utf8')
  try {
    return { config: parseConfig(text, file, env) }
  } catch (err) {
    const problems = problemsOf(err)
    const onlyWindow = problems !== undefined && problems.length > 0 && problems.every((p) => p.message.startsWith('unknown step "window"'))
    if (!onlyWindow || windowRegistered()) throw err
    const tolerated = `${path.basename(file)}: the window step is not registered yet, so ${problems.map((p) => p.path).join(', ')} ${problems.length === 1 ? 'was' : 'were'} taken out to validate the rest`
    return { config: parseConfig(withoutWindowSteps(text), file, env), tolerated }
  }
}

// ---------------------------------------------------------------------------------
// docker-compose.yml

export interface ComposeService {
  build?: unknown
  image?: string
  entrypoint?: string[] | string
  environment?: Record<string, string | number>
  volumes?: string[]
  ports?: string[]
  expose?: Array<string | number>
  depends_on?: string[] | Record<string, unknown>
  healthcheck?: { test: string[] }
  command?: string[] | string
}

export interface ComposeFile {
  services: Record<string, ComposeService>
  volumes?: Record<string, unknown>
}

export const composePath = path.join(repoRoot, 'docker-compose.yml')

export function readCompose(text = fs.readFileSync(composePath, 'utf8')): ComposeFile {
  return parse(text, { merge: true }) as ComposeFile
}

/** The services that run `binge start` (not the webhook receiver, which has its own entrypoint, nor the MQTT broker). */
export function nodeServices(compose: ComposeFile): Array<[string, ComposeService]> {
  return Object.entries(compose.services).filter(([, s]) => s.entrypoint === undefined && s.image === 'binge:local')
}

/**
 * A service's environment as the container sees it: compose interpolates `${VAR:-default}`
 * from the shell that runs it (here a fresh one, `cleanEnv()`), with the same syntax as binge.
 */
export function serviceEnv(s: ComposeService, shell: Env = cleanEnv()): Record<string, string> {
  return Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, expandEnv(String(v), shell).value]))
}

/** `HOST:CONTAINER` port pairs as numbers. */
export function publishedPorts(s: ComposeService): Array<{ host: number; container: number }> {
  return (s.ports ?? []).map((p) => {
    const parts = String(p).split(':')
    return { host: Number(parts.at(-2)), container: Number(parts.at(-1)) }
  })
}

/** `SOURCE:TARGET[:MODE]` volume entries. */
export function mounts(s: ComposeService): Array<{ source: string; target: string; mode?: string }> {
  return (s.volumes ?? []).map((v) => {
    const [source, target, mode] = v.split(':')
    return { source: source!, target: target!, ...(mode ? { mode } : {}) }
  })
}

export function portOf(hostPort: string): number {
  return Number(hostPort.slice(hostPort.lastIndexOf(':') + 1))
}

export function tcpPortOf(multiaddr: string): number {
  const m = /\/tcp\/(\d+)/.exec(multiaddr)
  if (!m) throw new Error(`no /tcp/PORT in ${multiaddr}`)
  return Number(m[1])
}

// Reading a node's config file: YAML, then `${VAR}` substitution, then the schema.
// It either returns a complete Config or throws one BINGE_CONFIG_INVALID listing
// every problem with its line and column, so nothing ever starts half-configured.

import { readFileSync } from 'node:fs'
import path from 'node:path'
import { LineCounter, parseDocument } from 'yaml'
import { BingeError } from '../errors.js'
import { substituteEnv, type Env } from './env.js'
import { formatPath, formatProblems, fromZodIssues, placeProblems, type ConfigProblem, type RawProblem } from './problems.js'
import { configSchema, type Config } from './schema.js'

export { formatProblems, type ConfigProblem } from './problems.js'

/** Read and validate the config at `file`; relative paths in it are relative to the working directory. */
export function loadConfig(file: string, env: Env = process.env): Config {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const reason = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'it is a directory' : e.message
    throw invalid(file, [{ path: '', message: `cannot read the config file: ${reason}` }], err)
  }
  return parseConfig(text, file, env)
}

/** Validate config `text`; `file` names it in problems and anchors relative paths. */
export function parseConfig(text: string, file: string, env: Env = process.env): Config {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false })

  // A document that does not parse has no reliable shape, so schema problems found
  // in it would be noise; its syntax errors are the whole story.
  if (doc.errors.length > 0) {
    const raw: RawProblem[] = doc.errors.map((e) => ({
      path: [],
      message: e.message,
      offset: e.pos[0],
    }))
    throw invalid(file, placeProblems(raw, doc, lines))
  }

  const envProblems = substituteEnv(doc, env)
  const parsed = configSchema.safeParse(doc.toJS({ maxAliasCount: 100 }))
  // A missing variable became '' and may fail its field too; say it once, the env way.
  const envPaths = new Set(envProblems.map((p) => formatPath(p.path)))
  const schemaProblems = parsed.success ? [] : fromZodIssues(parsed.error.issues).filter((p) => !envPaths.has(formatPath(p.path)))
  const problems = placeProblems([...envProblems, ...schemaProblems], doc, lines)
  if (problems.length > 0 || !parsed.success) throw invalid(file, problems)

  const config = parsed.data
  // Relative to the working directory, as every path in the config is (file outputs
  // too) and as Vector and Benthos users expect; `binge mesh up` runs nodes from the repo root.
  config.node.dataDir = path.resolve(config.node.dataDir)
  return config
}

function invalid(file: string, problems: ConfigProblem[], cause?: unknown): BingeError {
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`
  return new BingeError('BINGE_CONFIG_INVALID', `invalid config ${file} (${count}):\n${formatProblems(file, problems)}`, {
    cause,
    details: { file, problems },
  })
}

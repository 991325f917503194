// `binge validate --config F`: `ok` and exit 0, or every problem with its place, exit 2.
import { BingeError } from '../errors.js'
import { formatProblems, loadConfig, type ConfigProblem } from '../config/index.js'

/** Print a config error the way every command does, and give its exit code. */
export function reportConfigError(file: string, err: unknown): number {
  if (err instanceof BingeError && err.code === 'BINGE_CONFIG_INVALID') {
    const problems = (err.details?.problems ?? []) as ConfigProblem[]
    process.stderr.write(`${file}: invalid config (${problems.length} problem${problems.length === 1 ? '' : 's'})\n`)
    process.stderr.write(`${formatProblems(file, problems)}\n`)
    return 2
  }
  throw err
}

export function runValidate(file: string): number {
  try {
    loadConfig(file)
  } catch (err) {
    return reportConfigError(file, err)
  }
  process.stdout.write('ok\n')
  return 0
}

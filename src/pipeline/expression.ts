// JSONata expressions, compiled once at start. Evaluation is time-boxed and depth-
// limited by jsonata's own guardrails, so a pathological expression fails the event
// (and goes to onFail) instead of stalling a worker. The time box is checked between
// steps, not inside a builtin: `$pad`, the one builtin whose output size an event can
// choose freely, is bounded here (a width from an event took 5.7 s and 1.6 GB).
import jsonata from 'jsonata'
import { BingeError } from '../errors.js'

export interface Expression {
  readonly source: string
  /** `bindings` become `$name` variables (`$meta` for an event's input metadata). */
  evaluate(input: unknown, bindings?: Record<string, unknown>): Promise<unknown>
}

const noMeta: Readonly<Record<string, string>> = Object.freeze({})

/** The variables every event expression sees: `$meta` (the input's facts, `{}` for HTTP). */
export function bindingsOf(event: { meta?: Record<string, string> }): Record<string, unknown> {
  return { meta: event.meta ?? noMeta }
}

export interface ExpressionLimits {
  timeoutMs: number
  maxDepth: number
}

export const defaultLimits: ExpressionLimits = { timeoutMs: 1000, maxDepth: 500 }

/** Widest `$pad` result, in characters: far above any field a pipeline pads, far below harm. */
export const maxPadWidth = 1_000_000
const builtinPad = jsonata('$pad($s, $w, $c)')

/**
 * jsonata's own `$pad`, after a check on the width and on what it builds first: the pad
 * string repeated `width` times, then split into characters (at 400 million characters
 * that aborts the process, a V8 fatal error no catch sees). Its signature is kept.
 */
async function boundedPad(str: string | undefined, width: number, char?: string): Promise<unknown> {
  if (Math.abs(width) > maxPadWidth) throw new Error(`$pad width ${width} is over the limit of ${maxPadWidth} characters`)
  const built = Math.abs(width) * Math.max(1, char?.length ?? 1)
  if (built > 8 * maxPadWidth)
    throw new Error(
      `$pad width ${width} with a ${char!.length}-character pad string would build ${built} characters, over the limit of ${8 * maxPadWidth}`,
    )
  return builtinPad.evaluate({}, { s: str, w: width, c: char })
}

interface JsonataFailure {
  code?: string
  message?: string
  position?: number
  token?: string
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message
  const f = err as JsonataFailure
  const where = f.position !== undefined ? ` at position ${f.position}` : ''
  return `${f.code ?? 'error'}: ${f.message ?? 'JSONata failed'}${where}`
}

/** Compile or throw the JSONata message with its position (config validation uses this too). */
export function compile(source: string, limits: ExpressionLimits = defaultLimits): Expression {
  let compiled: jsonata.Expression
  try {
    compiled = jsonata(source, { timeout: limits.timeoutMs, stack: limits.maxDepth } as never)
    compiled.registerFunction('pad', boundedPad, '<s-ns?:s>')
  } catch (err) {
    throw new BingeError('BINGE_CONFIG_INVALID', `invalid JSONata expression: ${describe(err)}`, { cause: err })
  }
  return {
    source,
    async evaluate(input: unknown, bindings?: Record<string, unknown>): Promise<unknown> {
      try {
        return await compiled.evaluate(input, bindings)
      } catch (err) {
        const code = (err as JsonataFailure).code === 'D1012' ? 'BINGE_EXPRESSION_TIMEOUT' : 'BINGE_EXPRESSION_FAILED'
        throw new BingeError(code, `expression ${JSON.stringify(source)} failed: ${describe(err)}`, { cause: err })
      }
    },
  }
}

/** JSONata's idea of truth for predicates (`when`, `filter`): undefined and false are false. */
export function isTruthy(value: unknown): boolean {
  if (value === undefined || value === null || value === false) return false
  if (typeof value === 'number') return value !== 0 && !Number.isNaN(value)
  if (typeof value === 'string') return value.length > 0
  if (Array.isArray(value)) return value.some(isTruthy)
  return true
}

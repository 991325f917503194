// Which time an event belongs to, for windows, dedupe and throttle (drop mode): the
// value of the step's `time` expression (epoch milliseconds, or an ISO 8601 string),
// or, without one, when the origin node accepted the event (`receivedAt`). Both are
// fixed for the life of the event, so a redelivery after a crash lands in the same
// windows and gets the same answers: state stays deterministic.
import { BingeError } from '../../errors.js'
import type { Expression } from '../expression.js'
import type { PipelineEvent } from '../types.js'

export async function eventTime(event: PipelineEvent, time: Expression | undefined, step: string): Promise<number> {
  if (!time) return event.source.receivedAt
  const value = await time.evaluate(event.data)
  if (typeof value === 'number' && Number.isFinite(value)) return value
  if (typeof value === 'string') {
    const ms = Date.parse(value)
    if (!Number.isNaN(ms)) return ms
  }
  const got = value === undefined ? 'nothing' : JSON.stringify(value)
  throw new BingeError(
    'BINGE_EXPRESSION_FAILED',
    `${step}: time ${JSON.stringify(time.source)} gave ${got}, not epoch milliseconds or an ISO date`,
  )
}

/** The key an event is grouped by, as JSON text (so 1 and "1" differ); an expression that gives nothing fails the event. */
export async function groupKey(event: PipelineEvent, key: Expression | undefined, step: string): Promise<{ id: string; value: unknown }> {
  if (!key) return { id: '', value: null }
  const value = await key.evaluate(event.data)
  if (value === undefined)
    throw new BingeError('BINGE_EXPRESSION_FAILED', `${step}: key ${JSON.stringify(key.source)} gave nothing for this event`)
  const plain = JSON.parse(JSON.stringify(value)) as unknown
  return { id: JSON.stringify(plain), value: plain }
}

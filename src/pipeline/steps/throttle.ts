// throttle: at most `rate` events per key (a token bucket holding up to `burst`,
// refilled at the rate). Over the rate, `mode: drop` filters the event (counted) and
// `mode: delay` makes it wait for a token. Drop mode runs on event time (`time`, else
// receivedAt), so a redelivery after a crash gets the same answer; delay mode has to
// run on the wall clock, and holds its pipeline (the lock) while it waits, which is
// what slows the pipeline down to the rate. Buckets live in the node's store; a full
// bucket is the same as none, so the flush forgets those.
import type { z } from 'zod'
import { expression, int, oneOf, strict } from '../../schema/fields.js'
import { abortableSleep } from '../../util/backoff.js'
import { compile } from '../expression.js'
import type { StepEntry, StepFactoryContext } from '../registry-types.js'
import { eventTime, groupKey } from '../state/event-time.js'
import type { FlushRun, PipelineEvent, Step, StepRun } from '../types.js'
import { stateOf } from './fields.js'
import { rateSchema } from './rate.js'

const schema = strict({
  rate: rateSchema.describe('events per period, per key'),
  key: expression().optional().describe('JSONata: one bucket per value; absent: one for all events'),
  burst: int(1).optional().describe("events let through at once after a quiet spell; default: the rate's count"),
  mode: oneOf(['drop', 'delay'])
    .default('drop')
    .describe('over the rate: drop (filtered, counted) or delay (wait for a token, holding the pipeline)'),
  time: expression().optional().describe('drop mode: JSONata event time, epoch ms or ISO 8601; absent: receivedAt'),
}).check((ctx) => {
  if (ctx.value.mode === 'delay' && ctx.value.time !== undefined) {
    ctx.issues.push({
      code: 'custom',
      path: ['time'],
      message: 'delay mode waits on the wall clock; time applies to drop mode only',
      input: ctx.value.time,
    })
  }
})
export type ThrottleConfig = z.output<typeof schema>

interface Bucket {
  tokens: number
  /** Time of the last refill (event time in drop mode, wall clock in delay mode). */
  at: number
}

const META = 'meta'

export function createThrottle(config: ThrottleConfig, context: StepFactoryContext): Step {
  const key = config.key === undefined ? undefined : compile(config.key)
  const time = config.time === undefined ? undefined : compile(config.time)
  const burst = config.burst ?? Math.max(1, Math.ceil(config.rate.count))
  const perMs = config.rate.count / config.rate.perMs
  const state = stateOf<Bucket | number>(context, 'throttle')
  const refill = (b: Bucket | undefined, at: number): Bucket =>
    b === undefined ? { tokens: burst, at } : at <= b.at ? b : { tokens: Math.min(burst, b.tokens + (at - b.at) * perMs), at }

  async function take(k: string, at: number, signal?: AbortSignal): Promise<boolean> {
    for (;;) {
      const bucket = refill(state.get(k) as Bucket | undefined, at)
      if (bucket.tokens >= 1) {
        state.set(k, { tokens: bucket.tokens - 1, at: bucket.at })
        return true
      }
      if (config.mode === 'drop') {
        state.set(k, bucket)
        return false
      }
      await abortableSleep(Math.ceil((1 - bucket.tokens) / perMs), signal)
      at = Date.now()
    }
  }

  return {
    kind: 'throttle',
    flushEveryMs: 1000,
    async process(event: PipelineEvent, run: StepRun): Promise<PipelineEvent[]> {
      const k = `k:${(await groupKey(event, key, 'throttle')).id}`
      if (config.mode === 'delay') {
        await take(k, Date.now(), run.signal)
        return [event]
      }
      const t = await eventTime(event, time, 'throttle')
      const newest = state.get(META) as number | undefined
      if (newest === undefined || t > newest) state.set(META, t)
      return (await take(k, t)) ? [event] : []
    },
    async flush(run: FlushRun): Promise<PipelineEvent[]> {
      const now = config.mode === 'delay' ? run.now : (state.get(META) as number | undefined)
      if (now === undefined) return []
      const full: string[] = []
      for (const [k, b] of state.all()) if (k !== META && refill(b as Bucket, now).tokens >= burst) full.push(k)
      for (const k of full) state.delete(k)
      return []
    },
  }
}

export const throttleEntry: StepEntry<ThrottleConfig> = {
  name: 'throttle',
  summary:
    'At most `rate` events (100/s, 5/1m) per key, with bursts up to `burst`; over it, drop (event time, deterministic) or delay (wall clock, holds the pipeline). Buckets live in the node store.',
  schema,
  stateful: true,
  create: createThrottle,
}

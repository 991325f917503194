// dedupe: let an event through only if no event with the same key was let through
// within `window` before (or after: order of arrival does not matter) it, in event
// time (`time`, else receivedAt). The state is the time each key was last let through
// plus the newest time seen; a key older than `window` behind the newest time is
// expired, whether or not the flush has removed it yet, so answers never depend on
// when flushes run. Duplicates are filtered (counted).
import type { z } from 'zod'
import { expression, strict } from '../../schema/fields.js'
import { compile } from '../expression.js'
import type { StepEntry, StepFactoryContext } from '../registry-types.js'
import { eventTime, groupKey } from '../state/event-time.js'
import type { FlushRun, PipelineEvent, Step } from '../types.js'
import { positiveDuration, stateOf } from './fields.js'

const schema = strict({
  key: expression().describe('JSONata: what makes two events the same'),
  window: positiveDuration.default(600_000).describe('how long, in event time, a key keeps later events out'),
  time: expression().optional().describe('JSONata: the event time, epoch ms or ISO 8601; absent: when the event was accepted (receivedAt)'),
})
export type DedupeConfig = z.output<typeof schema>

const META = 'meta'
interface Meta {
  /** Newest event time seen. */
  maxTime: number
}

export function createDedupe(config: DedupeConfig, context: StepFactoryContext): Step {
  const key = compile(config.key)
  const time = config.time === undefined ? undefined : compile(config.time)
  const state = stateOf<number | Meta>(context, 'dedupe')
  const meta = (): Meta | undefined => state.get(META) as Meta | undefined
  return {
    kind: 'dedupe',
    flushEveryMs: 1000,
    async process(event: PipelineEvent): Promise<PipelineEvent[]> {
      const t = await eventTime(event, time, 'dedupe')
      const k = `k:${(await groupKey(event, key, 'dedupe')).id}`
      const maxTime = Math.max(meta()?.maxTime ?? t, t)
      if (maxTime !== meta()?.maxTime) state.set(META, { maxTime })
      const seen = state.get(k) as number | undefined
      const live = seen !== undefined && seen + config.window > maxTime
      if (live && Math.abs(t - seen) < config.window) return []
      state.set(k, live ? Math.max(seen, t) : t)
      return [event]
    },
    async flush(_run: FlushRun): Promise<PipelineEvent[]> {
      const maxTime = meta()?.maxTime
      if (maxTime === undefined) return []
      const expired: string[] = []
      for (const [k, seen] of state.all()) if (k !== META && (seen as number) + config.window <= maxTime) expired.push(k)
      for (const k of expired) state.delete(k)
      return []
    },
  }
}

export const dedupeEntry: StepEntry<DedupeConfig> = {
  name: 'dedupe',
  summary:
    'Drop events whose key was let through within `window` before, in event time (`time` expression, epoch ms or ISO; else receivedAt). Keys live in the node store, committed with the ack.',
  schema,
  stateful: true,
  create: createDedupe,
}

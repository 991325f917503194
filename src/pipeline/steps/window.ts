// window: count and aggregate events per key over windows of event time (`time`, epoch
// ms or ISO; else receivedAt) of `size`, starting every `every` (= size: tumbling;
// less: sliding), aligned to the epoch. Emits one event per window and key once the
// window is closed.
//
// Design constraints:
// - The watermark is the newest event time minus `lateness`; a window closes when the
//   watermark reaches its end. An event whose earliest window has closed is late: it
//   fails (onFail) rather than being counted somewhere else or nowhere, silently.
// - When the node has nothing queued and no newer event has come for `idle` (wall
//   clock), event time is taken to have run on with the clock, so the last windows
//   close too. The clock only runs while the node does: after a restart it starts over.
// - Events only add to windows (the event itself is absorbed: filtered). Closed windows
//   are emitted by the flush, under the pipeline's lock, through the later steps and the
//   outputs; their removal commits after delivery. A crash in between emits the same
//   window again after the restart (at-least-once, same id and same result); a window
//   whose output keeps failing stays, and is retried at the next flush. So no window
//   loses an acked event or counts one twice.
import type { z } from 'zod'
import { expression, strict } from '../../schema/fields.js'
import { durationSchema } from '../../util/duration.js'
import type { EventRecord } from '../../queue/types.js'
import { compile } from '../expression.js'
import type { StepEntry, StepFactoryContext } from '../registry-types.js'
import { eventTime, groupKey } from '../state/event-time.js'
import type { FlushRun, PipelineEvent, Step } from '../types.js'
import { LateEventError, positiveDuration, stateOf } from './fields.js'
import { type Accumulator, aggregateSchema, Aggregates } from './window-aggregate.js'

const MAX_WINDOWS_PER_EVENT = 1000

const schema = strict({
  key: expression().optional().describe('JSONata: one series of windows per value; absent: one for all events'),
  size: positiveDuration.describe('length of a window, in event time'),
  every: positiveDuration.optional().describe('a window starts every this much (sliding); default: size (tumbling)'),
  time: expression().optional().describe('JSONata: the event time, epoch ms or ISO 8601; absent: when the event was accepted (receivedAt)'),
  lateness: durationSchema.default(0).describe('how far behind the newest event time an event may come and still count; later ones fail'),
  idle: positiveDuration
    .default(1000)
    .describe('with nothing queued and no newer event for this long (wall clock), time runs on with the clock, so the last windows close'),
  aggregate: aggregateSchema.describe('what each result holds besides key, start and end'),
}).check((ctx) => {
  const { size, every } = ctx.value
  if (every === undefined) return
  if (every > size)
    ctx.issues.push({ code: 'custom', path: ['every'], message: `must be at or under size (${size}ms), got ${every}ms`, input: every })
  else if (size / every > MAX_WINDOWS_PER_EVENT) {
    ctx.issues.push({
      code: 'custom',
      path: ['every'],
      message: `size / every must be at most ${MAX_WINDOWS_PER_EVENT} windows per event, got ${Math.ceil(size / every)}`,
      input: every,
    })
  }
})
export type WindowConfig = z.output<typeof schema>

interface Meta {
  maxTime: number
  /** Windows ending at or before it are closed; null until the first event. */
  watermark: number | null
}

interface Group {
  /** The key as the expression gave it, written into each result. */
  key: unknown
  /** Open windows by start. */
  windows: Record<string, Accumulator>
}

const META = 'meta'
const floorTo = (t: number, step: number): number => Math.floor(t / step) * step

export function createWindow(config: WindowConfig, context: StepFactoryContext): Step {
  const key = config.key === undefined ? undefined : compile(config.key)
  const time = config.time === undefined ? undefined : compile(config.time)
  const every = config.every ?? config.size
  const aggregates = new Aggregates(config.aggregate)
  const state = stateOf<Meta | Group>(context, 'window')
  const meta = (): Meta | undefined => state.get(META) as Meta | undefined
  /** Wall clock when the newest event time last moved (in memory: the clock restarts with the node). */
  let movedAt: number | undefined
  /** Lowest end of an open window, as far as this process knows (a hint for `due`). */
  let nextEnd = -Infinity

  const result = (group: Group, acc: Accumulator): PipelineEvent => {
    const start = new Date(acc.start).toISOString()
    const data = { ...(key ? { key: group.key } : {}), start, end: new Date(acc.end).toISOString(), ...aggregates.result(acc) }
    const source: EventRecord = {
      id: `${context.pipeline}/${context.index}/${start}/${JSON.stringify(group.key)}`,
      origin: context.nodeId,
      receivedAt: acc.end,
      hops: 0,
      data,
    }
    return { source, data }
  }

  return {
    kind: 'window',
    flushEveryMs: Math.min(1000, Math.max(20, Math.floor(config.idle / 2))),
    async process(event: PipelineEvent): Promise<PipelineEvent[]> {
      const t = await eventTime(event, time, 'window')
      const g = await groupKey(event, key, 'window')
      const values = await aggregates.measure(event)
      const m = meta()
      // Windows holding t start at `first`, `first - every`, ... while they still reach past t.
      const first = floorTo(t, every)
      const starts: number[] = []
      for (let s = first; s + config.size > t; s -= every) starts.push(s)
      const earliestEnd = starts[starts.length - 1]! + config.size
      if (m?.watermark != null && earliestEnd <= m.watermark) {
        throw new LateEventError(
          `window: the event's time ${new Date(t).toISOString()} is late: its window ending ${new Date(earliestEnd).toISOString()} closed at watermark ${new Date(m.watermark).toISOString()} (raise lateness to wait longer)`,
        )
      }
      const id = `k:${g.id}`
      const group = state.get(id) as Group | undefined
      const windows = { ...group?.windows }
      for (const s of starts) {
        windows[s] = aggregates.add(windows[s] ?? aggregates.empty(s, s + config.size), values)
        // -Infinity: not known since the state was loaded; the next flush finds out.
        if (nextEnd !== -Infinity) nextEnd = Math.min(nextEnd, s + config.size)
      }
      state.set(id, { key: g.value, windows })
      const maxTime = Math.max(m?.maxTime ?? t, t)
      const watermark = Math.max(m?.watermark ?? -Infinity, maxTime - config.lateness)
      if (!m || maxTime !== m.maxTime || watermark !== m.watermark) state.set(META, { maxTime, watermark })
      if (!m || maxTime > m.maxTime) movedAt = Date.now()
      return []
    },
    due(): boolean {
      const w = meta()?.watermark
      return w != null && nextEnd <= w
    },
    async flush(run: FlushRun): Promise<PipelineEvent[]> {
      const m = meta()
      if (!m) return []
      movedAt ??= run.now
      let watermark = m.watermark ?? -Infinity
      if (run.final) watermark = Infinity
      else if (run.idle && run.now - movedAt >= config.idle)
        watermark = Math.max(watermark, m.maxTime + (run.now - movedAt) - config.lateness)
      const closed: Array<[Group, Accumulator]> = []
      const changed: Array<[string, Group | undefined]> = []
      let lowest = Infinity
      for (const [id, value] of state.all()) {
        if (id === META) continue
        const group = value as Group
        const open: Record<string, Accumulator> = {}
        let closing = 0
        for (const [s, acc] of Object.entries(group.windows)) {
          if (acc.end <= watermark) {
            closed.push([group, acc])
            closing++
          } else {
            open[s] = acc
            lowest = Math.min(lowest, acc.end)
          }
        }
        if (closing > 0) changed.push([id, Object.keys(open).length > 0 ? { key: group.key, windows: open } : undefined])
      }
      for (const [id, group] of changed) {
        if (group) state.set(id, group)
        else state.delete(id)
      }
      // Infinity (final) is not JSON: the end of the last window closed is watermark enough.
      if (watermark === Infinity) watermark = Math.max(m.watermark ?? m.maxTime, ...closed.map(([, acc]) => acc.end))
      if (watermark !== (m.watermark ?? -Infinity)) state.set(META, { maxTime: m.maxTime, watermark })
      nextEnd = lowest
      closed.sort(([ga, a], [gb, b]) => a.end - b.end || a.start - b.start || (JSON.stringify(ga.key) < JSON.stringify(gb.key) ? -1 : 1))
      return closed.map(([group, acc]) => result(group, acc))
    },
  }
}

export const windowEntry: StepEntry<WindowConfig> = {
  name: 'window',
  summary:
    'Per key, count/sum/min/max/avg events over tumbling (`size`) or sliding (`every` < size) windows of event time (`time` expression, epoch ms or ISO; else receivedAt); one result event per window and key once the watermark (newest time - `lateness`) passes its end, or the node has been idle for `idle`. Late events fail. State lives in the node store, committed with the ack.',
  schema,
  stateful: true,
  create: createWindow,
}

// What a handoff receiver believes of a batch, and what it checks itself. Events that
// come in over the mesh meet the checks HTTP applies (events/check-event.ts), and the
// envelope is corrected wherever the receiver knows better. The rules:
//  - Only a mesh member hands in: the connection's peer id must have a valid, signed
//    announcement in the peer table, and the batch's `from` must be the node name that
//    announcement gives (a peer cannot speak for another node). A peer that connected
//    just now gets a couple of gossip intervals to announce itself (mesh.ts).
//  - Every event's data is a JSON object within the limits of this node's own HTTP door:
//    depth 64, no __proto__/constructor key, finite numbers, at most http.maxBodyBytes.
//  - `kind: route` (which skips the high-water mark) is honoured only when every event
//    names a pipeline this node runs; an event naming a pipeline it does not run is
//    refused in any batch. Refusals here are not lifted for a resend: none of them can
//    change between a send and its resend, so a lost answer cannot turn into one.
//  - `hops` counts the hop just made. In an overflow batch, an event whose origin is not
//    the sender has made at least one hop before, so a claimed 0 is read as 1 (in a
//    route, 0 is honest: a forward makes a new event that keeps its origin). `origin`
//    cannot be checked (the origin may have left the mesh) and is kept.
//  - `receivedAt` in the future is clamped to now (it orders and ages events).
// Any refusal refuses the whole batch, and nothing of it is stored.
import { EventInputError, checkEvent } from '../events/check-event.js'
import type { EventRecord } from '../queue/types.js'
import type { HandoffRequest } from './handoff-protocol.js'

export interface HandoffChecks {
  /** The node name the sending peer id announced, or undefined if it has no valid announcement. */
  senderNode: string | undefined
  hasPipeline(name: string): boolean
  /** The largest event this node takes at its HTTP door (http.maxBodyBytes). */
  maxEventBytes: number
  now: number
}

/**
 * The events as this node will store them, or the reason the whole batch is refused.
 * `dataTexts`: each event's data as the frame carried it (v2), whose size is the event's
 * size here (as a request body's is at the HTTP door), so the data is not serialized again.
 */
export function checkHandoff(request: HandoffRequest, checks: HandoffChecks, dataTexts?: readonly string[]): EventRecord[] | string {
  if (checks.senderNode === undefined) return 'the sender is not a mesh member: its peer id has no valid announcement here'
  if (request.from !== checks.senderNode)
    return `the batch says it is from "${request.from}", but the sender's peer id announced "${checks.senderNode}"`
  const events: EventRecord[] = []
  for (let i = 0; i < request.events.length; i++) {
    const e = request.events[i]!
    if (e.pipeline !== undefined && !checks.hasPipeline(e.pipeline)) return `does not run the pipeline "${e.pipeline}"`
    if (request.kind === 'route' && e.pipeline === undefined)
      return `event ${i} (${e.id}) names no pipeline; a route batch is for a pipeline this node runs`
    const label = `event ${i} (${e.id}): data`
    const text = dataTexts?.[i]
    try {
      checkEvent(e.data, { label }, text === undefined ? checks.maxEventBytes : undefined)
    } catch (err) {
      if (err instanceof EventInputError) return err.message
      throw err
    }
    if (text !== undefined && text.length > checks.maxEventBytes / 3) {
      const bytes = Buffer.byteLength(text)
      if (bytes > checks.maxEventBytes)
        return `${label} is ${bytes} bytes of JSON, more than the ${checks.maxEventBytes} one event may be here`
    }
    const hopsBefore = request.kind === 'overflow' && e.origin !== request.from ? Math.max(1, e.hops) : e.hops
    // + 0: a -0 becomes 0, as its stored JSON reads back (the record may stand in for that parse).
    events.push({ ...e, hops: hopsBefore + 1, receivedAt: Math.min(e.receivedAt, checks.now) + 0 })
  }
  return events
}

// forward: hands the pipeline's (transformed) events to a mesh peer that runs another
// pipeline, over the durable handoff protocol; the write resolves once the peer made
// them durable. Each forwarded event gets an id derived from its source and the target
// (`<id>/<pipeline>`, `/<k>` for the k-th event a step split it into), so a forward
// retried after an unknown outcome is dropped by the receiver's dedupe, never run twice.
import type { z } from 'zod'
import { BingeError, asError } from '../../errors.js'
import { strict, text } from '../../schema/fields.js'
import type { EventRecord, JsonObject } from '../../queue/types.js'
import type { OutputEntry, OutputFactoryContext } from '../registry-types.js'
import type { Envelope, Output } from '../types.js'
import { OutputFailure } from './failure.js'

export type ForwardFn = OutputFactoryContext['forward']

/** The part of the mesh a forward needs. */
export interface RouteHandoff {
  /**
   * Resolves with the peer's node id, or undefined when no peer running `pipeline` took
   * them. The same first id goes to the same peer first, so a retry meets its dedupe.
   */
  handOffDirect(events: EventRecord[], kind: 'route', pipeline: string): Promise<{ node: string } | undefined>
}

/** A forward through `mesh()` (read at each call: the mesh may be built after the pipelines). */
export function meshForwarder(mesh: () => RouteHandoff | undefined): ForwardFn {
  return async (pipeline, events) => {
    const m = mesh()
    if (!m) return noMesh(pipeline, events)
    let peer: { node: string } | undefined
    try {
      peer = await m.handOffDirect(events, 'route', pipeline)
    } catch (err) {
      // Unknown outcome: the peer may hold them; a retry resends the same ids. An event
      // too big for the mesh never travels: that failure is for good.
      const tooBig = err instanceof BingeError && err.code === 'BINGE_PAYLOAD_TOO_LARGE'
      throw new OutputFailure(`forward to pipeline "${pipeline}" failed: ${asError(err).message}`, tooBig, err)
    }
    if (peer === undefined)
      throw new OutputFailure(`forward to pipeline "${pipeline}": no peer running it could take the events now`, false)
  }
}

/** The forward of a node without a mesh: fails for good, so onFail decides at once. */
export const noMesh: ForwardFn = async (pipeline) => {
  throw new OutputFailure(`forward to pipeline "${pipeline}" needs a mesh: this node runs alone (no mesh section in its config)`, true)
}

/** Envelopes as the events a peer will run through `pipeline`. */
export function forwardedEvents(records: readonly unknown[], pipeline: string): EventRecord[] {
  const seen = new Map<string, number>()
  return records.map((record) => {
    const e = record as Envelope
    const k = seen.get(e.id) ?? 0
    seen.set(e.id, k + 1)
    return {
      id: k === 0 ? `${e.id}/${pipeline}` : `${e.id}/${pipeline}/${k}`,
      pipeline,
      origin: e.origin,
      receivedAt: Date.parse(e.receivedAt),
      hops: 0,
      data: e.data as JsonObject,
    }
  })
}

const schema = strict({
  pipeline: text().min(1, 'expected a pipeline name').describe('the pipeline a peer runs the events through'),
})

export type ForwardOutputConfig = z.output<typeof schema>

export const forwardOutput: OutputEntry<ForwardOutputConfig> = {
  name: 'forward',
  summary: 'Hands the events to a mesh peer that runs the named pipeline (durable handoff, deduplicated on retry).',
  schema,
  create(config, context): Output {
    return {
      kind: 'forward',
      write: (records) => context.forward(config.pipeline, forwardedEvents(records, config.pipeline)),
    }
  },
}

// The contract between the registry and the steps and outputs it lists (as Benthos
// does it): each kind registers a name, a zod config schema, a one-line summary and a
// factory. The same schema validates config (every problem with its place) and
// generates docs/config.md, so the two cannot drift apart.
import type { z } from 'zod'
import type { EventRecord } from '../queue/types.js'
import type { StepState } from './state/step-state.js'
import type { Output, Step } from './types.js'

export interface StepFactoryContext {
  pipeline: string
  /** Position of the step in its pipeline, so state keys of two steps never collide. */
  index: number
  nodeId: string
  /**
   * A stateful step's own state, held in memory under its pipeline's lock and committed
   * with the acks (state/step-state.ts). Given by the pipeline to every step; a stateful
   * step created without it (no store to commit to) refuses to start.
   */
  openState?<V>(): StepState<V>
}

export interface StepEntry<C = unknown> {
  name: string
  summary: string
  schema: z.ZodType<C>
  /** Keeps state in the node's store, committed with the ack. */
  stateful: boolean
  create(config: C, context: StepFactoryContext): Step
}

export interface OutputFactoryContext {
  pipeline: string
  nodeId: string
  /** Hand events to a mesh peer that runs `pipeline`; rejects if none could take them. */
  forward(pipeline: string, events: EventRecord[]): Promise<void>
}

export interface OutputEntry<C = unknown> {
  name: string
  summary: string
  schema: z.ZodType<C>
  /**
   * The output always receives envelopes and applies its own `envelope: false`: it needs
   * each event's id (to deduplicate at the destination) and meta (for a topic) either way.
   */
  takesEnvelopes?: boolean
  create(config: C, context: OutputFactoryContext): Output
}

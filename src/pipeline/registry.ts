// The registry of step and output kinds (as Benthos does it): each entry names a kind,
// its zod config schema, a one-line summary and a factory. Config validation
// (config/schema.ts) and the reference docs (docs/config.md) are built from these same
// entries, so a kind cannot be accepted, documented or built in three different ways.
// Config validation already checked each entry's shape, so a factory gets its own
// section of the config, defaults applied.
import { BingeError } from '../errors.js'
import { entryOf } from '../schema/one-key.js'
import { outputEntries } from './outputs/index.js'
import { noMesh } from './outputs/forward.js'
import type { OutputFactoryContext, StepFactoryContext } from './registry-types.js'
import type { StepState } from './state/step-state.js'
import { stepEntries } from './steps/index.js'
import type { Output, Step } from './types.js'

export { outputEntries, stepEntries }

/** An output built for one pipeline. */
export interface BuiltOutput {
  /** The kind, as written in the config (`file`, `http`, ...). */
  name: string
  output: Output
  /** Write the envelope (default) or the event's data alone. */
  envelope: boolean
}

/** Where an output sits, for a wrapper (`binge run` taps every output). */
export interface OutputPlace {
  pipeline: string
  name: string
  /** Position in the pipeline's `outputs` list. */
  index: number
}

export type OutputWrapper = (output: Output, place: OutputPlace) => Output

function byName<E extends { name: string }>(entries: readonly E[], what: string): Map<string, E> {
  const map = new Map<string, E>()
  for (const e of entries) {
    if (map.has(e.name)) throw new BingeError('BINGE_INTERNAL', `two ${what} kinds are named "${e.name}"`)
    map.set(e.name, e)
  }
  return map
}

const steps = byName(stepEntries, 'step')
const outputs = byName(outputEntries, 'output')

function parts(entry: object, what: string): [string, unknown] {
  try {
    return entryOf(entry as Record<string, unknown>)
  } catch {
    throw new BingeError('BINGE_CONFIG_INVALID', `${what} must have exactly one key`)
  }
}

/** Build one step from its config entry (`{ filter: '...' }`). */
export function buildStep(item: object, context: StepFactoryContext): Step {
  const [name, config] = parts(item, 'a step')
  const entry = steps.get(name)
  if (!entry) throw new BingeError('BINGE_CONFIG_INVALID', `unknown step "${name}"`)
  return entry.create(config, context)
}

/** Build one output from its config entry (`{ file: { path } }`). */
export function buildOutput(item: object, context: OutputFactoryContext): BuiltOutput {
  const [name, raw] = parts(item, 'an output')
  const entry = outputs.get(name)
  if (!entry) throw new BingeError('BINGE_CONFIG_INVALID', `unknown output "${name}"`)
  const config = raw ?? {}
  const envelope = entry.takesEnvelopes === true || (config as { envelope?: unknown }).envelope !== false
  return { name, output: entry.create(config, context), envelope }
}

export interface PipelineBuildContext {
  pipeline: string
  nodeId: string
  /** Absent: the node runs alone, and a `forward` output fails for good. */
  forward?: OutputFactoryContext['forward']
  wrapOutput?: OutputWrapper
  /** The state of the step at `index` of kind `kind` (pipeline.ts keeps it under the pipeline's lock). */
  openState?: <V>(index: number, kind: string) => StepState<V>
}

/** A pipeline's steps, each told its place so stateful ones keep their state apart. */
export function buildSteps(items: readonly object[], context: PipelineBuildContext): Step[] {
  const open = context.openState
  return items.map((item, index) => {
    const kind = parts(item, 'a step')[0]
    const openState = open ? <V>() => open<V>(index, kind) : undefined
    return buildStep(item, { pipeline: context.pipeline, index, nodeId: context.nodeId, ...(openState ? { openState } : {}) })
  })
}

/** A pipeline's outputs, each passed through `wrapOutput` when given. */
export function buildOutputs(items: readonly object[], context: PipelineBuildContext): BuiltOutput[] {
  const factory: OutputFactoryContext = { pipeline: context.pipeline, nodeId: context.nodeId, forward: context.forward ?? noMesh }
  return items.map((item, index) => {
    const built = buildOutput(item, factory)
    if (!context.wrapOutput) return built
    return { ...built, output: context.wrapOutput(built.output, { pipeline: context.pipeline, name: built.name, index }) }
  })
}

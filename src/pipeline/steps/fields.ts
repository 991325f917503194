// Config fields and helpers the stateful steps share.
import { BingeError } from '../../errors.js'
import { durationSchema } from '../../util/duration.js'
import type { StepFactoryContext } from '../registry-types.js'
import type { StepState } from '../state/step-state.js'

/** A duration above zero, in milliseconds. */
export const positiveDuration = durationSchema.refine((ms) => ms > 0, 'expected a duration above 0')

/** The step's state, or a refusal to start when no store was given to commit it to. */
export function stateOf<V>(context: StepFactoryContext, kind: string): StepState<V> {
  if (!context.openState) {
    throw new BingeError('BINGE_CONFIG_INVALID', `the ${kind} step keeps state and needs the node's store; it cannot run here`)
  }
  return context.openState<V>()
}

/** An event that came after the windows it belongs to had closed: it fails, to its onFail. */
export class LateEventError extends BingeError {
  constructor(message: string) {
    super('BINGE_LATE_EVENT', message)
    this.name = 'LateEventError'
  }
}

// The one failure type outputs throw. `permanent` says the destination will never take
// this payload (an HTTP 4xx other than 408/429, a forward with no mesh): the pipeline
// then skips its retries and, for a batch, finds the bad events one by one.
import { BingeError } from '../../errors.js'

export class OutputFailure extends BingeError {
  constructor(
    message: string,
    readonly permanent: boolean,
    cause?: unknown,
  ) {
    super('BINGE_OUTPUT_FAILED', message, { cause })
    this.name = 'OutputFailure'
  }
}

// filter: keep the event when the JSONata predicate holds, else it is filtered.
import { compile, isTruthy } from '../expression.js'
import type { PipelineEvent, Step } from '../types.js'

export function createFilter(expression: string): Step {
  const predicate = compile(expression)
  return {
    kind: 'filter',
    async process(event: PipelineEvent): Promise<PipelineEvent[]> {
      return isTruthy(await predicate.evaluate(event.data)) ? [event] : []
    },
  }
}

// filter: keep the event when the JSONata predicate holds, else it is filtered.
import { expression } from '../../schema/fields.js'
import { bindingsOf, compile, isTruthy } from '../expression.js'
import type { StepEntry } from '../registry-types.js'
import type { PipelineEvent, Step } from '../types.js'

export function createFilter(source: string): Step {
  const predicate = compile(source)
  return {
    kind: 'filter',
    async process(event: PipelineEvent): Promise<PipelineEvent[]> {
      return isTruthy(await predicate.evaluate(event.data, bindingsOf(event.source))) ? [event] : []
    },
  }
}

export const filterEntry: StepEntry<string> = {
  name: 'filter',
  summary: 'Keep the events for which a JSONata predicate holds; the others are filtered (counted).',
  schema: expression(),
  stateful: false,
  create: (config) => createFilter(config),
}

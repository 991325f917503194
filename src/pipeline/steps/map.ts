// map: replace the event's data with the JSONata result. The result must be an
// object (or an array of objects, which splits the event); anything else is a failure,
// since outputs write JSON objects. An undefined result filters the event.
import { expression } from '../../schema/fields.js'
import { BingeError } from '../../errors.js'
import type { JsonObject } from '../../queue/types.js'
import { bindingsOf, compile } from '../expression.js'
import type { StepEntry } from '../registry-types.js'
import type { PipelineEvent, Step } from '../types.js'

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function createMap(expression: string): Step {
  const mapping = compile(expression)
  return {
    kind: 'map',
    async process(event: PipelineEvent): Promise<PipelineEvent[]> {
      const result = await mapping.evaluate(event.data, bindingsOf(event.source))
      if (result === undefined) return []
      const items = Array.isArray(result) ? result : [result]
      return items.map((item, i) => {
        if (!isObject(item)) {
          const where = Array.isArray(result) ? `item ${i} of the result` : 'the result'
          throw new BingeError(
            'BINGE_EXPRESSION_FAILED',
            `map ${JSON.stringify(expression)}: ${where} is ${item === null ? 'null' : typeof item}, not an object`,
          )
        }
        // JSONata may hand back frozen or sequence-tagged values; a plain copy is what outputs expect.
        return { source: event.source, data: JSON.parse(JSON.stringify(item)) as JsonObject }
      })
    },
  }
}

export const mapEntry: StepEntry<string> = {
  name: 'map',
  summary: 'Replace the event with the result of a JSONata expression (an array of objects splits it; no result filters it).',
  schema: expression(),
  stateful: false,
  create: (config) => createMap(config),
}

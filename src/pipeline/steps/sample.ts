// sample: keep a fraction `rate` of the events, chosen by a hash of the event id (or of
// `key`, to keep or drop all events of a key together) and the step's place. The same
// event always gets the same answer, on any node and after any redelivery, so the step
// needs no state. The others are filtered (counted).
import { createHash } from 'node:crypto'
import { z } from 'zod'
import { expression, strict } from '../../schema/fields.js'
import { compile } from '../expression.js'
import type { StepEntry, StepFactoryContext } from '../registry-types.js'
import { groupKey } from '../state/event-time.js'
import type { PipelineEvent, Step } from '../types.js'

const fraction = z
  .preprocess(
    (v) => (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : v),
    z.number({ error: (i) => `expected a number from 0 to 1, got ${JSON.stringify(i.input)}` }),
  )
  .refine((n) => n >= 0 && n <= 1, 'expected a number from 0 to 1')

const schema = strict({
  rate: fraction.describe('the fraction kept, from 0 to 1'),
  key: expression().optional().describe('JSONata: keep or drop all events of a value together; absent: by event id'),
})
export type SampleConfig = z.output<typeof schema>

/** A number in [0, 1) from the text's SHA-1. */
function unitHash(text: string): number {
  return createHash('sha1').update(text).digest().readUInt32BE(0) / 2 ** 32
}

export function createSample(config: SampleConfig, context: StepFactoryContext): Step {
  const key = config.key === undefined ? undefined : compile(config.key)
  const salt = `${context.pipeline}/${context.index}/`
  return {
    kind: 'sample',
    async process(event: PipelineEvent): Promise<PipelineEvent[]> {
      const what = key ? (await groupKey(event, key, 'sample')).id : event.source.id
      return unitHash(salt + what) < config.rate ? [event] : []
    },
  }
}

export const sampleEntry: StepEntry<SampleConfig> = {
  name: 'sample',
  summary:
    'Keep a fraction `rate` (0..1) of the events, chosen by a hash of the event id (or `key`): the same event always gets the same answer.',
  schema,
  stateful: false,
  create: createSample,
}

// The node's config contract (SPEC.md section 2) as one zod schema; the types come
// from it, never written twice. Every section is optional with defaults, unknown keys
// are refused at every depth, and steps and outputs are looked up in open registries.

import os from 'node:os'
import { z } from 'zod'
import { durationSchema } from '../util/duration.js'
import { sizeOrShareSchema, sizeSchema } from '../util/size.js'
import {
  expected,
  expression,
  httpUrl,
  int,
  list,
  listenAddress,
  oneOf,
  optionalSection,
  ordered,
  section,
  strict,
  text,
} from './fields.js'
import { oneKeyOf, type OneKey } from './one-key.js'
import { outputEntries, stepEntries } from '../pipeline/registry.js'

/**
 * Step kinds by name, each the schema of its config, taken from the step registry
 * (pipeline/registry.ts) that also builds them and generates their docs. A name
 * missing from this map is refused as an unknown step; one added later is accepted.
 */
export const stepSchemas: Record<string, z.ZodType> = Object.fromEntries(stepEntries.map((e) => [e.name, e.schema]))

/** Output kinds by name, from the output registry, as for `stepSchemas`. */
export const outputSchemas: Record<string, z.ZodType> = Object.fromEntries(outputEntries.map((e) => [e.name, e.schema]))

const nodeSection = strict({
  id: text().min(1, 'expected a non-empty node id').optional(),
  dataDir: text().min(1, 'expected a directory').optional(),
}).transform(({ id = os.hostname(), dataDir }) => ({
  id,
  // Relative to the working directory; load.ts makes it absolute.
  dataDir: dataDir ?? `./data/${id}`,
}))

const httpSection = strict({
  listen: listenAddress().default('0.0.0.0:8080'),
  maxBodyBytes: sizeSchema.default(1024 * 1024),
  authToken: text().default(''),
  requestTimeout: durationSchema.default(30_000),
})

const queueSection = strict({
  mode: oneOf(['durable', 'memory']).default('durable'),
  sync: oneOf(['batch', 'always', 'none']).default('batch'),
  highWaterMark: int(1).default(10_000),
  lowWaterMark: int(0).default(8_000),
  maxEvents: int(1).default(100_000),
  maxBytes: sizeSchema.default(2 ** 30),
  dedupeWindow: durationSchema.default(600_000),
  // Absent: 5% of the volume, at most 1 GiB, at least 64 MiB or a quarter of a small one (disk-space.ts).
  minFreeDisk: sizeOrShareSchema.optional(),
})
  .check(ordered('lowWaterMark', 'highWaterMark', 'low'))
  .check(ordered('highWaterMark', 'maxEvents', 'high'))

const logSection = strict({
  level: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
})

const meshSection = strict({
  listen: text().min(1).default('/ip4/0.0.0.0/tcp/7000'),
  bootstrap: list(text().min(1)),
  psk: text().default(''),
  allowPeers: list(text().min(1)),
  gossipInterval: durationSchema.default(1_000),
  // Above 2 an event could come back to a node it already left, whose dedupe index
  // would drop it: refused until events carry their path.
  maxHops: int(0, 2).default(2),
  handoffTimeout: durationSchema.default(10_000),
  unreachablePeerTimeout: durationSchema.default(600_000),
  /** Events per handoff batch, and batches in flight to peers at once. */
  handoffBatch: int(1, 10_000).default(256),
  handoffConcurrency: int(1, 64).default(4),
})

const retrySection = strict({
  attempts: int(0).default(3),
  backoff: durationSchema.default(200),
  maxBackoff: durationSchema.default(30_000),
}).check(ordered('backoff', 'maxBackoff', 'high', 'ms'))

/** What `onFail.then` may say, besides the bare words deadletter, drop and alert. */
export const failActionSchemas: Record<string, z.ZodType> = {
  forward: strict({ url: httpUrl() }),
  alert: section(strict({ webhook: httpUrl().optional() })),
}

const bareActions = ['deadletter', 'drop', 'alert'] as const
export type BareFailAction = (typeof bareActions)[number]
const failAction = oneKeyOf('failure action', failActionSchemas)

// A bare word or a one-key object; kept as written so the engine sees the same shape.
const thenSchema = z.unknown().transform((input, ctx): BareFailAction | OneKey => {
  if (typeof input !== 'string') {
    const parsed = failAction.safeParse(input)
    if (parsed.success) return parsed.data
    ctx.issues.push(...parsed.error.issues.map((issue) => ({ ...issue, input: undefined })))
    return z.NEVER
  }
  if ((bareActions as readonly string[]).includes(input)) return input as BareFailAction
  ctx.addIssue({
    code: 'custom',
    message: `expected deadletter, drop, alert, forward: { url } or alert: { webhook }, got ${JSON.stringify(input)}`,
  })
  return z.NEVER
})

const onFailSection = strict({
  retry: retrySection.optional(),
  then: thenSchema.default('deadletter'),
})

const pipelineName = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

const pipelineSection = strict({
  when: expression().optional(),
  steps: list(oneKeyOf('step', stepSchemas)),
  outputs: list(oneKeyOf('output', outputSchemas)),
  onFail: section(onFailSection),
})

export const configSchema = section(
  strict({
    node: section(nodeSection),
    http: section(httpSection),
    queue: section(queueSection),
    workers: int(1, 1024).default(4),
    log: section(logSection),
    // Absent: the node runs alone.
    mesh: optionalSection(meshSection),
    pipelines: section(
      z.record(
        z
          .string()
          .regex(
            pipelineName,
            'a pipeline name starts with a letter or digit and holds only letters, digits, "_", "." and "-"',
          ),
        section(pipelineSection),
        {
          error: (i) =>
            i.code === 'invalid_type' ? expected('a mapping of pipeline names to pipelines', i.input) : undefined,
        },
      ),
    ),
  }),
)

export type Config = z.output<typeof configSchema>
export type NodeConfig = Config['node']
export type HttpConfig = Config['http']
export type QueueConfig = Config['queue']
export type LogConfig = Config['log']
export type MeshConfig = z.output<typeof meshSection>
export type PipelineConfig = z.output<typeof pipelineSection>
export type OnFailConfig = PipelineConfig['onFail']
export type RetryConfig = z.output<typeof retrySection>
/** A step as written: `{ <kind>: <config> }`; see `entryOf` in one-key.ts. */
export type StepConfig = OneKey
/** An output as written: `{ <kind>: <config> }`. */
export type OutputConfig = OneKey
export type FailAction = BareFailAction | OneKey

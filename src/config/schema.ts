// The node's config contract (docs/design.md §2) as one zod schema; the types come
// from it, never written twice. Every section is optional with defaults, unknown keys
// are refused at every depth, and steps and outputs are looked up in open registries.

import os from 'node:os'
import { z } from 'zod'
import { durationSchema } from '../util/duration.js'
import { sizeOrShareSchema, sizeSchema } from '../util/size.js'
import {
  expected,
  bool,
  expression,
  int,
  list,
  listenAddress,
  oneOf,
  optionalSection,
  ordered,
  section,
  strict,
  text,
} from '../schema/fields.js'
import { closedByDefault } from './closed-mesh.js'
import { oneKeyOf } from '../schema/one-key.js'
import { onFailSection } from '../pipeline/on-fail-schema.js'
import { outputEntries, stepEntries } from '../pipeline/registry.js'
import { inputEntries } from '../inputs/registry.js'

/**
 * Step kinds by name, each the schema of its config, taken from the step registry
 * (pipeline/registry.ts) that also builds them and generates their docs. A name
 * missing from this map is refused as an unknown step; one added later is accepted.
 */
export const stepSchemas: Record<string, z.ZodType> = Object.fromEntries(stepEntries.map((e) => [e.name, e.schema]))

/** Output kinds by name, from the output registry, as for `stepSchemas`. */
export const outputSchemas: Record<string, z.ZodType> = Object.fromEntries(outputEntries.map((e) => [e.name, e.schema]))

/** Input kinds by name (besides HTTP, which is built in), from the input registry. */
export const inputSchemas: Record<string, z.ZodType> = Object.fromEntries(inputEntries.map((e) => [e.name, e.schema]))

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
  // One handoff batch holds at most 10,000 events, so any request can be routed to a
  // peer whole; and a 1 MiB body of `{}` (350,000 events) is refused before it costs.
  maxEventsPerRequest: int(1).default(10_000),
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
  /** An open mesh on purpose: any peer that can reach the port may join (warned at every start). */
  insecure: bool().default(false),
  gossipInterval: durationSchema.default(1_000),
  // Above 2 an event could come back to a node it already left, whose dedupe index
  // would drop it: refused until events carry their path.
  maxHops: int(0, 2).default(2),
  handoffTimeout: durationSchema.default(10_000),
  unreachablePeerTimeout: durationSchema.default(600_000),
  /** Events per handoff batch, and batches in flight to peers at once. */
  handoffBatch: int(1, 10_000).default(256),
  handoffConcurrency: int(1, 64).default(4),
}).check(closedByDefault())

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
    // Besides HTTP; each goes through the same door (src/ingest/ingest.ts).
    inputs: list(oneKeyOf('input', inputSchemas)),
    pipelines: section(
      z.record(
        z.string().regex(pipelineName, 'a pipeline name starts with a letter or digit and holds only letters, digits, "_", "." and "-"'),
        section(pipelineSection),
        {
          error: (i) => (i.code === 'invalid_type' ? expected('a mapping of pipeline names to pipelines', i.input) : undefined),
        },
      ),
    ),
  }),
)

export type Config = z.output<typeof configSchema>
export type MeshConfig = z.output<typeof meshSection>

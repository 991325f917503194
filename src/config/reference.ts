// docs/config.md, generated: the top-level sections from the config schema and every
// step and output kind from the registry (name, summary, fields with their types and
// defaults). `npm run docs` writes it; test/docs.test.ts fails when the committed file
// differs from a fresh rendering, so the reference cannot drift from what validates.
import type { z } from 'zod'
import type { OutputEntry, StepEntry } from '../pipeline/registry-types.js'
import { inputEntries } from '../inputs/registry.js'
import type { InputEntry } from '../inputs/types.js'
import { outputEntries, stepEntries } from '../pipeline/registry.js'
import { describeFields, unwrap, type FieldDoc } from './describe-schema.js'
import { configSchema } from './schema.js'

/** What each field of the top-level sections is for, by path (`pipelines.<name>` fields by their own path). */
const notes: Record<string, string> = {
  'node.id': "this node's name in logs, envelopes and the mesh; default: the host name",
  'node.dataDir': 'the queue, identity key and state live here; default: `./data/<id>`',
  'http.listen': 'host:port of the HTTP API (`[v6]:port` for IPv6)',
  'http.maxBodyBytes': 'larger request bodies are answered 413',
  'http.maxEventsPerRequest': 'a body with more events is answered 413 before its events are checked',
  'http.authToken': 'empty: off; when set, POST needs `Authorization: Bearer <token>`',
  'http.requestTimeout': 'longest one request may take',
  'queue.mode': '`durable`: LevelDB under dataDir, crash-safe; `memory`: fast, a crash loses what it holds',
  'queue.sync':
    "`batch`: group commit, each answer after its batch is fsync'd; `always`: each request written and fsync'd on its own (LevelDB merges those waiting); `none`: the OS decides",
  'queue.highWaterMark': 'unprocessed events above it: the newest are handed off to peers ...',
  'queue.lowWaterMark': '... until at or under it',
  'queue.maxEvents': 'hard cap; beyond it (or maxBytes) POST answers 429 with Retry-After (413 if one request alone holds more)',
  'queue.maxBytes': 'hard cap on the bytes of unprocessed and in-flight events',
  'queue.dedupeWindow': 'an id seen again within it is answered `"duplicate": true` and not queued again',
  'queue.minFreeDisk':
    "free space kept on the data volume (a size, or a percentage like `5%`); below it new events go to a peer or get 429 while the backlog drains. Default: 5% of the volume, at most 1 GiB (as Elasticsearch's flood stage), at least 64 MiB or a quarter of a small volume (room LevelDB needs to flush and compact). Memory mode ignores it",
  workers: 'events processed at once',
  'log.level': 'JSON log lines on stderr from this level up',
  mesh: 'absent: the node runs alone; written (even empty): it joins the mesh',
  inputs: 'inputs besides HTTP, each a one-key mapping naming its kind; see [Inputs](#inputs)',
  'mesh.listen': 'libp2p listen multiaddr',
  'mesh.bootstrap': 'host:port or multiaddrs; one reachable peer is enough to join',
  'mesh.psk':
    'a private-network key every node shares (`binge keygen` makes one): peers without it cannot connect. A mesh listening beyond loopback needs it, or allowPeers, or insecure: true',
  'mesh.allowPeers': "optional peer-id allow-list (`binge id --config FILE` prints a node's id)",
  'mesh.insecure': 'true: run a mesh open to anyone who reaches its port, on purpose (warned at every start)',
  'mesh.gossipInterval': 'how often the node gossips its load and pipelines',
  'mesh.maxHops': 'a handed-off event is not handed on past this',
  'mesh.handoffTimeout': 'longest a peer may take to answer a handoff; past it the outcome is unknown and the batch is resent',
  'mesh.unreachablePeerTimeout': 'batches promised to a peer unreachable this long are taken back and processed here',
  when: 'JSONata predicate; absent: every event enters',
  steps: 'run in order; see [Steps](#steps)',
  outputs: 'every output gets every event that leaves the steps; see [Outputs](#outputs)',
  onFail: 'what happens to an event a step or an output failed',
  'onFail.retry': 'absent: outputs are tried once',
  'onFail.retry.attempts': 'tries of a failing output, the first included',
  'onFail.retry.backoff': 'wait before the second try; doubled each time, with jitter',
  'onFail.retry.maxBackoff': 'the longest wait between tries',
  'onFail.then': '`deadletter` (kept, listable, replayable), `drop`, `alert`, `alert: { webhook }` or `forward: { url }`',
}

/** Types clearer written by hand than read back from a schema. */
const types: Record<string, string> = {
  steps: 'list of steps',
  outputs: 'list of outputs',
  inputs: 'list of inputs',
  'onFail.then': 'action',
  pipelines: 'mapping of pipeline names to pipelines',
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

function table(fields: FieldDoc[], extra: (f: FieldDoc) => string | undefined = () => undefined): string {
  const rows = fields.map((f) => {
    const dflt = f.default !== undefined ? `\`${f.default}\`` : f.required ? 'required' : ''
    const type = f.type === 'mapping' ? 'mapping' : f.type
    const about = f.description ?? extra(f) ?? ''
    return `| \`${f.path}\` | ${cell(type)} | ${cell(dflt)} | ${cell(about)} |`
  })
  return ['| field | type | default | |', '|---|---|---|---|', ...rows].join('\n')
}

type Shape = Record<string, z.ZodType>

function shapeOf(schema: z.ZodType): Shape {
  const def = (unwrap(schema).base as unknown as { _zod: { def: { shape?: Shape } } })._zod.def
  if (!def.shape) throw new Error('expected an object schema')
  return def.shape
}

function pipelineSchema(sections: Shape): z.ZodType {
  const record = (unwrap(sections.pipelines!).base as unknown as { _zod: { def: { valueType: z.ZodType } } })._zod.def
  return record.valueType
}

function sections(): string {
  const shape = shapeOf(configSchema)
  const out: string[] = []
  const topLevel: FieldDoc[] = []
  for (const [name, schema] of Object.entries(shape)) {
    if (name === 'pipelines') continue
    const fields = describeFields(schema, name)
    if (fields.length === 1 && fields[0]!.path === name) {
      topLevel.push(fields[0]!)
      continue
    }
    const about = notes[name] ? `${notes[name]}.\n\n` : ''
    out.push(
      `### \`${name}\`\n\n${about}${table(
        fields.filter((f) => f.path !== name),
        (f) => notes[f.path],
      )}`,
    )
  }
  const pipeline = describeFields(pipelineSchema(shape)).map((f) => ({ ...f, type: types[f.path] ?? f.type }))
  out.push(
    '### `pipelines.<name>`\n\n' +
      'One entry per pipeline; a name starts with a letter or digit and holds only letters, digits, `_`, `.` and `-`. ' +
      'An event enters every pipeline whose `when` holds, and is acked once each has finished or handled its failure.\n\n' +
      table(pipeline, (f) => notes[f.path]),
  )
  return [
    '## Sections\n\nEvery section may be left out: a file with only `pipelines:` runs.',
    `### Top level\n\n${table(topLevel, (f) => notes[f.path])}`,
    ...out,
  ].join('\n\n')
}

function kind(entry: StepEntry | OutputEntry | InputEntry): string {
  const fields = describeFields(entry.schema)
  const head = `### \`${entry.name}\`\n\n${entry.summary}`
  const stateful =
    'stateful' in entry && entry.stateful ? "\n\nStateful: its state is kept in the node's store and committed with the ack." : ''
  if (fields.length === 1 && fields[0]!.path === '') {
    const f = fields[0]!
    const dflt = f.default !== undefined ? ` (default \`${f.default}\`)` : ''
    const example = `\`- ${entry.name}: <${f.type}>\``
    return `${head}${stateful}\n\nWritten ${example}${dflt}.${f.description ? ` ${f.description}.` : ''}`
  }
  const bare = !fields.some((f) => f.required) ? ` Written bare (\`- ${entry.name}:\`), every field takes its default.` : ''
  return `${head}${stateful}\n\nWritten \`- ${entry.name}: { ... }\`.${bare}\n\n${table(fields)}`
}

export function renderConfigReference(): string {
  return `${[
    '# Configuration reference',
    '<!-- Generated by `npm run docs` from src/config/schema.ts and the step and output registry (src/pipeline/registry.ts). Do not edit: test/docs.test.ts fails when this file is not what the schemas say. -->',
    'One YAML file per node. `${VAR}` and `${VAR:-default}` are read from the environment. ' +
      'Durations are written `200ms`, `5s`, `10m`, `1h30m` (a bare number is milliseconds); ' +
      'sizes `512`, `64KiB`, `10MB`, `1GiB`. Unknown keys are refused, and a bad file is refused whole, ' +
      'with every problem and its place (`binge validate --config FILE`).',
    sections(),
    '## Inputs\n\nHTTP is built in (`http:`). Each further input is a one-key mapping under `inputs:` naming its kind. ' +
      'Every input hands its payloads to the same door as HTTP: the same parser, checks and limits (`http.maxBodyBytes`, ' +
      '`http.maxEventsPerRequest`), ids, queue, handoff and hard cap. Expressions see what the input knows of an event ' +
      '(an MQTT topic, ...) as `$meta`, and envelopes carry it as `meta`.',
    ...inputEntries.map(kind),
    '## Steps\n\nEach step is a one-key mapping naming its kind. A step passes an event on, filters it (counted, never silent), ' +
      "splits it, or fails it, and then the pipeline's `onFail` decides.",
    ...stepEntries.map(kind),
    '## Outputs\n\nEach output is a one-key mapping naming its kind. Unless it says `envelope: false`, an output writes the envelope ' +
      '`{"id", "pipeline", "node", "origin", "receivedAt", "data"}`. A write resolves only once it is delivered (a file fsync\'d, ' +
      "a 2xx answer, a peer's durable ack); a failed write is retried per `onFail.retry`.",
    ...outputEntries.map(kind),
  ].join('\n\n')}\n`
}

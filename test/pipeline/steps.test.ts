// Every step kind as a table (test/fixtures/steps/*.yaml): a pipeline's steps, the
// input events (one POST, processed in order by one worker), the data its file output
// must hold, in order, and the events that must be dead-lettered. Each case runs on its
// own in-process node with the real queue, so state, acks and flushes are all real.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { startTempNode, waitFor, type TempNode } from '../support/temp-node.js'
import { readJsonLines as lines } from '../support/json-lines.js'

interface Case {
  name: string
  steps: unknown[]
  input: Array<Record<string, unknown>>
  output: Array<Record<string, unknown>>
  failed?: Array<Record<string, unknown>>
  /** Extra node config (YAML mapping), e.g. workers. */
  node?: Record<string, unknown>
}

const tables = join(import.meta.dirname, '..', 'fixtures', 'steps')

let node: TempNode | undefined
afterEach(async () => {
  await node?.close()
  node = undefined
})

async function run(c: Case): Promise<{ output: Array<Record<string, unknown>>; failed: Array<Record<string, unknown>> }> {
  const config = {
    workers: 1,
    ...c.node,
    pipelines: {
      case: {
        steps: c.steps,
        outputs: [{ file: { path: '$DIR/out.jsonl', envelope: false } }],
        onFail: { then: 'deadletter' },
      },
    },
  }
  node = await startTempNode(stringify(config))
  const t = node
  const res = await t.node.app.request('/events', {
    method: 'POST',
    body: JSON.stringify(c.input),
    headers: { 'content-type': 'application/json' },
  })
  expect(res.status).toBe(202)
  const out = join(t.dir, 'out.jsonl')
  const wanted = c.failed?.length ?? 0
  await waitFor(
    () => {
      const q = t.node.queue.depth()
      return q.unprocessed === 0 && q.inflight === 0 && q.deadletter >= wanted
    },
    { what: 'the queue to drain' },
  )
  // Window results come from flushes after the last batch: wait for as many lines as
  // expected, then a little longer, so a result too many would show.
  await waitFor(() => lines(out).length >= c.output.length, { what: `${c.output.length} output lines`, timeoutMs: 10_000 }).catch(
    () => undefined,
  )
  await new Promise((r) => setTimeout(r, 300))
  const failed = (await t.node.queue.listDeadletter()).map((d) => d.event.data)
  return { output: lines(out), failed }
}

for (const file of readdirSync(tables)
  .filter((f) => f.endsWith('.yaml'))
  .sort()) {
  const cases = parse(readFileSync(join(tables, file), 'utf8')) as Case[]
  describe(`steps table ${file}`, () => {
    for (const c of cases) {
      it(c.name, async () => {
        const { output, failed } = await run(c)
        expect(output).toEqual(c.output)
        // Dead letters are listed by id (random here): compare as sets of data.
        const key = (d: unknown) => JSON.stringify(d)
        expect(failed.map(key).sort()).toEqual((c.failed ?? []).map(key).sort())
      })
    }
  })
}

// Every output kind as a table (outputs.cases.yaml): a config, the events in, and what
// the destination received, run through a real pipeline with its steps. The file is
// read back from disk, http from a local server the test starts, stdout from the
// process's stream and forward from the function the node would hand to the mesh.
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { parse, stringify } from 'yaml'
import { parseConfig } from '../../src/config/index.js'
import { silentLogger } from '../../src/log.js'
import { Metrics } from '../../src/metrics.js'
import { Pipeline } from '../../src/pipeline/pipeline.js'
import type { EventRecord } from '../../src/queue/types.js'
import { TraceStore } from '../../src/trace.js'

interface Case {
  case: string
  steps?: object[]
  output: Record<string, unknown>
  input: Record<string, unknown>[]
  received: unknown
  headers?: Record<string, string>
}

const table = parse(readFileSync(new URL('./outputs.cases.yaml', import.meta.url), 'utf8')) as { receivedAt: string; cases: Case[] }
const receivedAt = Date.parse(table.receivedAt)

interface Hook {
  url: string
  requests: Array<{ headers: http.IncomingHttpHeaders; body: unknown }>
  close(): Promise<void>
}

async function startHook(): Promise<Hook> {
  const requests: Hook['requests'] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      requests.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) })
      res.writeHead(200).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Every file under `dir` as { name: its JSON lines }, folders nested. */
function tree(dir: string): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name)
    out[name] = statSync(path).isDirectory()
      ? tree(path)
      : readFileSync(path, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as unknown)
  }
  return out
}

let hook: Hook
const dirs: string[] = []
beforeAll(async () => {
  hook = await startHook()
})
afterAll(async () => {
  await hook.close()
})
afterEach(() => {
  vi.restoreAllMocks()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe('outputs, as a table of config -> input -> received', () => {
  it.each(table.cases.map((c) => [c.case, c] as const))('%s', async (_name, c) => {
    const dir = mkdtempSync(join(tmpdir(), 'binge-outputs-'))
    dirs.push(dir)
    const kind = Object.keys(c.output)[0]!
    const output = JSON.parse(JSON.stringify(c.output).split('$DIR').join(dir).split('$HOOK').join(hook.url)) as object
    const config = parseConfig(
      stringify({ node: { id: 'n1' }, pipelines: { p: { steps: c.steps ?? [], outputs: [output] } } }),
      join(dir, 'node.yaml'),
      {},
    )
    const forwarded: Array<{ pipeline: string; events: EventRecord[] }> = []
    const printed: string[] = []
    if (kind === 'stdout') {
      vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string, cb?: (err?: Error) => void) => {
        printed.push(chunk)
        cb?.()
        return true
      }) as typeof process.stdout.write)
    }
    hook.requests.length = 0
    const pipeline = new Pipeline(
      { name: 'p', ...config.pipelines.p! },
      {
        nodeId: 'n1',
        log: silentLogger,
        metrics: new Metrics('n1', () => ({ unprocessed: 0, inflight: 0, handingOff: 0, deadletter: 0, bytes: 0 }), {
          defaultMetrics: false,
        }),
        trace: new TraceStore('n1'),
        forward: async (target, events) => void forwarded.push({ pipeline: target, events }),
      },
    )
    const events: EventRecord[] = c.input.map((data, i) => ({ id: `e${i + 1}`, origin: 'n0', receivedAt, hops: 0, data }))
    await pipeline.start()
    const results = await pipeline.runBatch(events, new AbortController().signal)
    await pipeline.stop()
    vi.restoreAllMocks()

    expect(
      results.every((r) => r.status === 'processed' || r.status === 'filtered'),
      JSON.stringify(results),
    ).toBe(true)
    const received =
      kind === 'stdout'
        ? printed
            .join('')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as unknown)
        : kind === 'file'
          ? tree(dir)
          : kind === 'http'
            ? byText(hook.requests.map((r) => r.body))
            : forwarded
    // POSTs of one batch go out together and may arrive in any order.
    expect(received).toEqual(kind === 'http' ? byText(c.received as unknown[]) : c.received)
    if (c.headers) for (const r of hook.requests) expect(r.headers).toMatchObject(c.headers)
  })
})

const byText = (items: unknown[]) => [...items].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))

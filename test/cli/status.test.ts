// `binge status [--url URL]`: the built CLI against a real node (in-process, LevelDB on
// a temp dir, real HTTP), an unreachable one and something that is not a binge node;
// and the table it prints for a node with peers, laid out in columns. The same command
// against a real three-node mesh is in mesh-up.test.ts.
import { spawn } from 'node:child_process'
import http from 'node:http'
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { NodeStats } from '../../src/http/api.js'
import { formatStatus } from '../../src/cli/status.js'
import { startTempNode, type TempNode } from '../support/temp-node.js'
import { cleanEnv, requireBuiltCli } from '../deploy/deploy-support.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
})

/** The built CLI, asynchronously: the node under test answers from this same process. */
function status(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [requireBuiltCli(), 'status', ...args], {
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })))
}

async function node(): Promise<TempNode> {
  const n = await startTempNode('pipelines: { p: { outputs: [{ file: { path: $DIR/out.jsonl } }] } }')
  cleanups.push(() => n.close())
  return n
}

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
  })
}

describe('binge status', () => {
  it("prints a node's identity, queue and counters, and says when it has no mesh", async () => {
    const n = await node()
    for (const body of [{ a: 1 }, { a: 2 }]) {
      const res = await fetch(`${n.url}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
      expect(res.status).toBe(202)
    }
    const r = await status(['--url', n.url])
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.split('\n')
    expect(lines[0]).toMatch(new RegExp(`^test-node {2}${n.url.replace(/\./g, '\\.')} {2}ready {2}up \\d+s {2}\\(no mesh\\)$`))
    expect(lines[1]).toMatch(/^queue {5}durable: \d+ unprocessed, \d+ in flight, 0 handing off, 0 dead-lettered \(/)
    expect(lines[2]).toMatch(
      /^counters {2}received 2, processed \d, filtered 0, failed 0, handed off 0, handed in 0, taken back 0, rejected 0$/,
    )
    expect(r.stdout).toContain('peers     none: this node has no mesh section')
  })

  it('takes the URL from BINGE_URL when --url is absent, and a trailing slash is fine', async () => {
    const n = await node()
    const r = await status([], { BINGE_URL: `${n.url}/` })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^test-node /)
  })

  it('exits 1 saying why when the node cannot be reached or is not a binge node; 2 for a URL that is not one', async () => {
    const port = await closedPort()
    const other = http.createServer((_, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"hello":"world"}'))
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r))
    cleanups.push(() => new Promise((r) => other.close(() => r())))
    const url = `http://127.0.0.1:${(other.address() as net.AddressInfo).port}`
    const [down, notBinge, bad] = await Promise.all([
      status(['--url', `http://127.0.0.1:${port}`]),
      status(['--url', url]),
      status(['--url', 'localhost:8080']),
    ])
    expect(down.code).toBe(1)
    expect(down.stderr).toBe(`binge status: GET http://127.0.0.1:${port}/stats failed: ECONNREFUSED\n`)
    expect(notBinge.code).toBe(1)
    expect(notBinge.stderr).toContain('is it a binge node?')
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('is not an http:// URL')
  })

  it('lays out known peers as a table, one aligned row each, sorted by node', () => {
    const load = {
      depth: 12,
      inflight: 3,
      highWaterMark: 10_000,
      lowWaterMark: 8_000,
      maxEvents: 100_000,
      accepting: true,
      drainRate: 41.5,
    }
    const stats = {
      node: 'node-a',
      phase: 'ready',
      peerId: '12D3KooWSelf',
      uptimeSeconds: 3725,
      queue: { mode: 'durable', unprocessed: 5, inflight: 1, handingOff: 2, deadletter: 1, bytes: 3 * 1024 * 1024 },
      counters: {
        received: 10,
        duplicates: 0,
        processed: 4,
        filtered: 1,
        failed: 1,
        deadlettered: 1,
        dropped: 0,
        handedOff: 2,
        handedIn: 0,
        takenBack: 0,
        rejected: 0,
      },
      peers: [
        {
          node: 'node-c',
          peerId: '12D3KooWC',
          http: 'http://127.0.0.1:8083',
          load: { ...load, depth: 0, inflight: 0, accepting: false },
          pipelines: [],
          ageMs: 61_000,
          connected: false,
        },
        {
          node: 'node-b',
          peerId: '12D3KooWB',
          http: 'http://127.0.0.1:8082',
          load,
          pipelines: ['pull-requests', 'failed-payments'],
          ageMs: 420,
          connected: true,
        },
      ],
    } as unknown as NodeStats
    const out = formatStatus(stats, 'http://127.0.0.1:8081').split('\n')
    expect(out[0]).toBe('node-a  http://127.0.0.1:8081  ready  up 1h2m  peer 12D3KooWSelf')
    expect(out[1]).toBe('queue     durable: 5 unprocessed, 1 in flight, 2 handing off, 1 dead-lettered (3.0 MiB)')
    const table = out.slice(4).filter(Boolean)
    expect(table).toHaveLength(3)
    expect(table[0]).toMatch(/^PEER {4}HTTP +CONNECTED +HEARD +DEPTH +IN FLIGHT +LOW\/HIGH\/MAX +ACCEPTING +DRAIN\/S +PIPELINES$/)
    expect(table[1]).toMatch(
      /^node-b +http:\/\/127\.0\.0\.1:8082 +yes +0\.4s ago +12 +3 +8000\/10000\/100000 +yes +41\.5 +pull-requests, failed-payments$/,
    )
    expect(table[2]).toMatch(/^node-c +http:\/\/127\.0\.0\.1:8083 +no +61s ago +0 +0 +8000\/10000\/100000 +no +41\.5 +\(relay\)$/)
    // Columns line up: each header starts where its values start.
    for (const column of ['HTTP', 'CONNECTED', 'DEPTH', 'PIPELINES']) {
      const at = table[0]!.indexOf(column)
      for (const row of table.slice(1)) expect(row[at - 1]).toBe(' ')
      for (const row of table.slice(1)) expect(row[at]).not.toBe(' ')
    }
  })
})

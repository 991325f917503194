// Shared pieces of the benchmarks: a cleanup stack that stops everything they start
// (even on error or Ctrl-C), in-process nodes on 127.0.0.1 with a silent logger,
// autocannon runs in a worker thread (so the load generator never shares the event
// loop of the server it measures), payloads of a fixed size and small formatters.
import { readFileSync, readdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type AddressInfo, createServer } from 'node:net'
import autocannon from 'autocannon'
import type { Hono } from 'hono'
import { parseConfig } from '../src/config/index.js'
import { silentLogger } from '../src/log.js'
import { BingeNode } from '../src/node.js'

/** Seconds from the environment, or the default. */
export function envSeconds(name: string, fallback: number): number {
  const raw = process.env[name]
  const value = raw === undefined || raw === '' ? fallback : Number(raw)
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number of seconds, got "${raw}"`)
  return value
}

/** A whole number from the environment, or the default; at least `min` (1 unless a setting means something by 0). */
export function envInt(name: string, fallback: number, min = 1): number {
  const raw = process.env[name]
  const value = raw === undefined || raw === '' ? fallback : Number(raw)
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`${name} must be a whole number of at least ${min}, got "${raw}"`)
  return value
}

/** Undo actions run last-in first-out; each runs once, and one failing does not stop the rest. */
export class Cleanup {
  private readonly stack: Array<{ what: string; undo: () => Promise<void> | void }> = []

  /** Register `undo`; `now` runs it early, `drop` forgets it (the thing ended by itself). */
  add(what: string, undo: () => Promise<void> | void): { now: () => Promise<void>; drop: () => void } {
    const entry = { what, undo }
    this.stack.push(entry)
    const drop = (): boolean => {
      const i = this.stack.indexOf(entry)
      if (i >= 0) this.stack.splice(i, 1)
      return i >= 0
    }
    return {
      now: async () => {
        if (drop()) await undo()
      },
      drop: () => void drop(),
    }
  }

  async runAll(): Promise<void> {
    while (this.stack.length > 0) {
      const { what, undo } = this.stack.pop()!
      try {
        await undo()
      } catch (err) {
        process.stderr.write(`cleanup: ${what} failed: ${String(err)}\n`)
      }
    }
  }
}

export async function makeTempRoot(cleanup: Cleanup): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'binge-bench-'))
  cleanup.add(`remove ${root}`, () => rm(root, { recursive: true, force: true }))
  return root
}

export interface NodeSetup {
  id: string
  dataDir: string
  queue?: Record<string, unknown>
  workers?: number
  pipelines?: Record<string, unknown>
  extendApp?: (app: Hono) => void
}

export interface RunningNode {
  node: BingeNode
  url: string
  stop: () => Promise<void>
}

/** The config text of a bench node: JSON is YAML, so no quoting to get wrong. */
export function nodeConfigText(setup: Omit<NodeSetup, 'extendApp'>, logLevel = 'silent'): string {
  return JSON.stringify(
    {
      node: { id: setup.id, dataDir: setup.dataDir },
      http: { listen: '127.0.0.1:0', maxBodyBytes: '4MiB' },
      // Caps far above what a run writes: the benchmark measures ingest, not 429s.
      queue: { maxEvents: 50_000_000, highWaterMark: 40_000_000, lowWaterMark: 30_000_000, maxBytes: '200GiB', ...setup.queue },
      workers: setup.workers ?? 4,
      log: { level: logLevel },
      pipelines: setup.pipelines ?? {},
    },
    null,
    2,
  )
}

export async function startNode(cleanup: Cleanup, setup: NodeSetup): Promise<RunningNode> {
  const config = parseConfig(nodeConfigText(setup), join(setup.dataDir, 'bench.yaml'))
  const node = new BingeNode(config, { log: silentLogger, processMetrics: false, extendApp: setup.extendApp })
  const stop = cleanup.add(`stop node ${setup.id}`, () => node.stop()).now
  const address: AddressInfo = await node.start()
  return { node, url: `http://127.0.0.1:${address.port}`, stop }
}

export interface LoadResult {
  /** 2xx answers per second. */
  okPerSecond: number
  ok: number
  non2xx: number
  errors: number
  p50: number
  p99: number
  max: number
  seconds: number
  statusCodes: Record<string, number>
}

export interface LoadOptions {
  url: string
  connections: number
  seconds?: number
  amount?: number
  body: string
  contentType?: string
  /** Requests per second in all (an open loop); absent: each connection sends as soon as it is answered. */
  rate?: number
}

/** One autocannon run in a worker thread; stopped by `cleanup` if the bench dies mid-run. */
export async function load(cleanup: Cleanup, options: LoadOptions): Promise<LoadResult> {
  const instance = autocannon({
    url: options.url,
    connections: options.connections,
    ...(options.amount === undefined ? { duration: options.seconds ?? 10 } : { amount: options.amount }),
    workers: 1,
    method: 'POST',
    headers: { 'content-type': options.contentType ?? 'application/json' },
    body: options.body,
    timeout: 30,
    ...(options.rate === undefined ? {} : { overallRate: options.rate }),
  })
  const running = cleanup.add('stop autocannon', () => instance.stop())
  try {
    const r = await instance
    const statusCodes: Record<string, number> = {}
    for (const [code, { count }] of Object.entries(r.statusCodeStats)) statusCodes[code] = count
    return {
      okPerSecond: r['2xx'] / r.duration,
      ok: r['2xx'],
      non2xx: r.non2xx,
      errors: r.errors,
      p50: r.latency.p50,
      p99: r.latency.p99,
      max: r.latency.max,
      seconds: r.duration,
      statusCodes,
    }
  } finally {
    running.drop()
  }
}

/** One JSON object whose serialized form is exactly `bytes` long. */
export function eventOfSize(bytes: number, fields: Record<string, unknown> = {}): Record<string, unknown> {
  const base = { type: 'temperature', room: 'room-17', celsius: 31.5, ...fields, pad: '' }
  const missing = bytes - JSON.stringify(base).length
  if (missing < 0) throw new Error(`an event of ${bytes} bytes cannot hold ${JSON.stringify(base)}`)
  return { ...base, pad: 'x'.repeat(missing) }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Poll `check` every `everyMs` until it returns true; throws after `timeoutMs`. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

export const fmt = {
  int: (n: number) => Math.round(n).toLocaleString('en-US'),
  ms: (n: number) => `${n.toFixed(n < 10 ? 1 : 0)} ms`,
  ratio: (n: number) => n.toFixed(2),
  mib: (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`,
}

export function line(label: string, text: string): void {
  process.stdout.write(`${label.padEnd(44)} ${text}\n`)
}

/** A port the OS says is free now (for a server the benchmark starts: a broker, a node). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** CPU (ms, or µs per unit from threadUsPer) of a process by thread: main, libuv's pool, V8's helpers, other. */
export type ThreadsCpu = { main: number; pool: number; v8: number; other: number }

/** µs per unit (event, request) by thread between two threadCpuMs readings. */
export function threadUsPer(before: ThreadsCpu, after: ThreadsCpu, units: number): ThreadsCpu {
  const us = (k: keyof ThreadsCpu) => ((after[k] - before[k]) * 1000) / units
  return { main: us('main'), pool: us('pool'), v8: us('v8'), other: us('other') }
}

/**
 * CPU time (ms) of a process by kind of thread: its main thread, libuv's pool (LevelDB's
 * reads, writes and syncs; LevelDB's compaction thread, started from the pool, carries
 * the pool's name), V8's helpers (GC, compilation), and the rest.
 */
export function threadCpuMs(pid: number): ThreadsCpu {
  const by = { main: 0, pool: 0, v8: 0, other: 0 }
  let tids: string[] = []
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {
    return by
  }
  for (const tid of tids) {
    const thread = procCpu(`/proc/${pid}/task/${tid}/stat`)
    if (!thread) continue
    const kind = tid === String(pid) ? 'main' : thread.name === 'libuv-worker' ? 'pool' : thread.name.startsWith('V8') ? 'v8' : 'other'
    by[kind] += thread.ms
  }
  return by
}

/**
 * A process's or thread's CPU time so far (user and system, ms) and its name, from a
 * /proc `stat` file (`/proc/PID/stat`, `/proc/PID/task/TID/stat`); undefined once it is gone.
 */
export function procCpu(statPath: string): { name: string; ms: number } | undefined {
  try {
    const stat = readFileSync(statPath, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // utime and stime, in clock ticks: USER_HZ is 100 on Linux.
    return { name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), ms: ((Number(fields[11]) + Number(fields[12])) * 1000) / 100 }
  } catch {
    return undefined
  }
}

// An anchor for the ingest benchmark (issue 14): Redis with `appendonly yes` and
// `appendfsync always`, taking the same 1 KB payload as an LPUSH from the same number
// of clients. Each reply follows an fsync of the AOF, and Redis group-commits the
// writes of all clients that arrive within one event-loop turn: the same promise binge
// makes for a 202 in `sync: batch`, from a server built for it. It runs its own
// redis-server on a free port with its data in the benchmark's temp dir, driven by
// redis-benchmark (Debian package redis-server / redis-tools), and is stopped by its PID.
import { spawn } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { type Cleanup, freePort, waitUntil } from './support.js'

export interface RedisAnchor {
  opsPerSec: number
  p50Ms?: number
  p99Ms?: number
}

function run(command: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
    })
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString()
    })
    child.once('error', reject)
    child.once('exit', (code) => resolve({ code, out }))
  })
}

/** LPUSH of `bytes`-byte values from `clients` clients for about `seconds`, against an fsync-always AOF; undefined when Redis is not installed. */
export async function measureRedisAnchor(
  cleanup: Cleanup,
  root: string,
  options: { clients: number; bytes: number; seconds: number; expectedRate: number },
): Promise<RedisAnchor | undefined> {
  const dir = join(root, 'redis')
  await mkdir(dir, { recursive: true })
  const port = await freePort()
  const server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''],
    { stdio: 'ignore' },
  )
  const started = await new Promise<boolean>((resolve) => {
    server.once('spawn', () => resolve(true))
    server.once('error', () => resolve(false))
  })
  if (!started || server.pid === undefined) return undefined
  const pid = server.pid
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()))
  const stop = cleanup.add(`stop redis-server (pid ${pid})`, async () => {
    if (server.exitCode !== null || server.signalCode !== null) return
    process.kill(pid, 'SIGTERM')
    await exited
  }).now
  try {
    await waitUntil(
      'redis-server to answer',
      async () => (await run('redis-cli', ['-p', String(port), 'ping'])).out.includes('PONG'),
      10_000,
    )
    // About `seconds` of work at the rate binge's no-op reached (Redis is rarely slower).
    const requests = Math.max(20_000, Math.round(options.expectedRate * options.seconds))
    const { out } = await run('redis-benchmark', [
      '-p',
      String(port),
      '-c',
      String(options.clients),
      '-n',
      String(requests),
      '-d',
      String(options.bytes),
      '-t',
      'lpush',
      '--csv',
    ])
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    const row = out
      .split('\n')
      .find((l) => l.startsWith('"LPUSH"'))
      ?.split(',')
      .map((cell) => cell.replace(/"/g, ''))
    if (!row) throw new Error(`redis-benchmark printed no LPUSH line: ${out.slice(0, 500)}`)
    return { opsPerSec: Number(row[1]), p50Ms: Number(row[4]), p99Ms: Number(row[6]) }
  } finally {
    await stop()
  }
}

// Real binge nodes as child processes, for the crash tests: write a config to a temp
// dir, spawn the BUILT cli (`npm run build` first), learn the OS-chosen port from the
// "listening" log line, poll /readyz, kill -9 or SIGTERM by pid. Plus the instruments
// those tests share: concurrent ingest clients that sort every event they sent into
// acknowledged / rejected / unknown, and a tolerant reader of a file output.
// Invariants: every child a test spawns is registered and killed by pid in
// `killAllNodes` (call it from afterEach); nothing here sleeps for a fixed time to let
// something happen, it polls for the condition with a deadline.

import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
export const cliPath = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js')

// ---------------------------------------------------------------------------------
// Polling

import { delay, waitFor } from './wait.js'

export { delay, type WaitOptions, waitFor } from './wait.js'

// ---------------------------------------------------------------------------------
// Temp dirs and configs

const tempDirs: string[] = []

export function makeTempDir(prefix = 'binge-crash-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  tempDirs.push(dir)
  return dir
}

/** Remove the temp dirs made since the last call; keep them (and say where) after a failure or with BINGE_KEEP_TMP=1. */
export function removeTempDirs(keep = false): void {
  for (const dir of tempDirs.splice(0)) {
    if (keep || process.env.BINGE_KEEP_TMP === '1') console.log(`kept ${dir} for inspection`)
    else fs.rmSync(dir, { recursive: true, force: true })
  }
}

export type NodeConfig = Record<string, unknown>

export function writeConfig(dir: string, config: NodeConfig, name = 'node.yaml'): string {
  const file = path.join(dir, name)
  fs.writeFileSync(file, stringify(config))
  return file
}

// ---------------------------------------------------------------------------------
// Node processes

export type LogLine = Record<string, unknown> & { msg?: string; level?: number; time?: string }

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

const MAX_KEPT_LINES = 5_000
const live = new Set<NodeProcess>()

export class NodeProcess {
  readonly child: ChildProcess
  readonly pid: number
  /** Every JSON log line so far (the last MAX_KEPT_LINES). */
  readonly logs: LogLine[] = []
  /** Every stderr line so far, raw, for diagnostics. */
  readonly stderr: string[] = []
  readonly exited: Promise<Exit>
  exit?: Exit
  url?: string
  private partial = ''
  private readonly portFound: Promise<string>

  private constructor(
    readonly configFile: string,
    readonly label: string,
    env: NodeJS.ProcessEnv,
  ) {
    if (!fs.existsSync(cliPath)) throw new Error(`${cliPath} is missing: run \`npx tsc -p tsconfig.json\` first`)
    this.child = spawn(process.execPath, [cliPath, 'start', '--config', configFile], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    this.child.once('error', (err) => this.stderr.push(`spawn error: ${String(err)}`))
    if (this.child.pid === undefined) throw new Error(`spawning ${process.execPath} ${cliPath} failed`)
    this.pid = this.child.pid
    live.add(this)
    // 'close', not 'exit': by then stderr has been read to its end, for diagnostics.
    this.exited = new Promise<Exit>((resolve) => {
      this.child.once('close', (code, signal) => {
        this.exit = { code, signal }
        live.delete(this)
        resolve(this.exit)
      })
    })
    this.portFound = new Promise<string>((resolve, reject) => {
      this.child.stderr!.setEncoding('utf8')
      this.child.stderr!.on('data', (chunk: string) => {
        const lines = (this.partial + chunk).split('\n')
        this.partial = lines.pop()!
        for (const line of lines) {
          this.keep(line)
          const address = this.logs.at(-1)?.http
          if (this.url === undefined && typeof address === 'string' && /:\d+$/.test(address)) {
            const i = address.lastIndexOf(':')
            const host = address.slice(0, i)
            this.url = `http://${host.includes(':') ? `[${host}]` : host}${address.slice(i)}`
            resolve(this.url)
          }
        }
      })
      void this.exited.then((exit) => {
        if (this.partial !== '') this.keep(this.partial)
        reject(new Error(`node ${this.label} exited (${JSON.stringify(exit)}) before it listened\n${this.tail()}`))
      })
    })
    this.portFound.catch(() => undefined)
  }

  /** Spawn `binge start --config FILE`; resolves once its HTTP port is known (it may still be recovering). */
  static async spawn(
    configFile: string,
    options: { label?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
  ): Promise<NodeProcess> {
    const node = new NodeProcess(configFile, options.label ?? path.basename(configFile), options.env ?? {})
    const timeoutMs = options.timeoutMs ?? 30_000
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`node ${node.label} did not log its HTTP port within ${timeoutMs} ms\n${node.tail()}`)),
        timeoutMs,
      )
    })
    try {
      await Promise.race([node.portFound, timeout])
    } catch (err) {
      await node.kill('SIGKILL')
      throw err
    } finally {
      clearTimeout(timer)
    }
    return node
  }

  /** Spawn and wait until /readyz answers 200. */
  static async start(
    configFile: string,
    options: { label?: string; env?: NodeJS.ProcessEnv; readyTimeoutMs?: number } = {},
  ): Promise<NodeProcess> {
    const node = await NodeProcess.spawn(configFile, options)
    await node.waitReady(options.readyTimeoutMs)
    return node
  }

  get alive(): boolean {
    return this.exit === undefined
  }

  /** Poll /readyz until 200 (generous deadline: recovery of a big queue on a busy machine). */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const url = this.url!
    await waitFor(
      async () => {
        if (!this.alive) throw new Error(`node exited: ${JSON.stringify(this.exit)}`)
        const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5_000) })
        await res.body?.cancel()
        return res.status === 200
      },
      { timeoutMs, intervalMs: 20, what: `node ${this.label} to be ready` },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.tail()}`)
    })
  }

  /** The first log line that satisfies `match`, waiting for it if need be. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
    return waitFor(() => this.logs.find(match), { timeoutMs, intervalMs: 10, what: `a log line of node ${this.label}` })
  }

  async stats(): Promise<NodeStats> {
    return getJson<NodeStats>(`${this.url}/stats`)
  }

  /** Wait until the queue holds nothing unprocessed or in flight. */
  async waitDrained(timeoutMs = 60_000): Promise<NodeStats> {
    return waitFor(
      async () => {
        if (!this.alive) throw new Error(`node exited: ${JSON.stringify(this.exit)}`)
        const s = await this.stats()
        return s.queue.unprocessed === 0 && s.queue.inflight === 0 ? s : undefined
      },
      { timeoutMs, intervalMs: 50, what: `node ${this.label} to drain its queue` },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.tail()}`)
    })
  }

  /**
   * Send a signal to this child's pid and wait for it to be gone. Through the child
   * handle, which sends nothing once the child has exited: never a reused pid.
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 30_000): Promise<Exit> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal)
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`node ${this.label} (pid ${this.pid}) did not exit within ${timeoutMs} ms of ${signal}\n${this.tail()}`)),
        timeoutMs,
      )
    })
    try {
      return await Promise.race([this.exited, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** The last lines of stderr, for failure messages. */
  tail(lines = 40): string {
    return `--- stderr of node ${this.label} (pid ${this.pid}), last ${lines} lines ---\n${this.stderr.slice(-lines).join('\n')}`
  }

  private keep(line: string): void {
    if (line === '') return
    this.stderr.push(line)
    if (this.stderr.length > MAX_KEPT_LINES) this.stderr.shift()
    try {
      const parsed = JSON.parse(line) as unknown
      if (parsed !== null && typeof parsed === 'object') {
        this.logs.push(parsed as LogLine)
        if (this.logs.length > MAX_KEPT_LINES) this.logs.shift()
      }
    } catch {
      // not a log line (a crash trace, say): kept raw in `stderr`
    }
  }
}

/** SIGKILL every node still alive (by pid) and wait for each to be gone. For afterEach. */
export async function killAllNodes(): Promise<void> {
  await Promise.all([...live].map((node) => node.kill('SIGKILL').catch(() => undefined)))
}

// A last resort if the test process dies without its afterEach: no orphans.
process.once('exit', () => {
  for (const node of live) {
    try {
      process.kill(node.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
})

// ---------------------------------------------------------------------------------
// HTTP

export interface NodeStats {
  node: string
  phase: string
  queue: { mode: string; unprocessed: number; inflight: number; deadletter: number; bytes: number }
  counters: Record<string, number>
}

export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`)
  return (await res.json()) as T
}

export interface PostResult {
  status: number
  /** undefined: no answer (connection refused or reset, timeout). */
  body?: { ids?: string[]; error?: string; code?: string }
  retryAfter?: string | null
  error?: string
  /** The socket error's code: ECONNREFUSED means the request never reached a node. */
  errorCode?: string
}

const keepAliveAgent = new http.Agent({ keepAlive: true })

/**
 * POST events as JSON. With keepAlive (the default, as fetch and most SDKs do) the
 * socket is reused across requests; without, each request has its own connection
 * and says `Connection: close`, as curl does.
 */
export function postEvents(
  url: string,
  events: object | object[],
  options: { timeoutMs?: number; keepAlive?: boolean } = {},
): Promise<PostResult> {
  const { timeoutMs = 20_000, keepAlive = true } = options
  const body = JSON.stringify(events)
  return new Promise<PostResult>((resolve) => {
    const req = http.request(
      `${url}/events`,
      {
        method: 'POST',
        agent: keepAlive ? keepAliveAgent : false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...(keepAlive ? {} : { connection: 'close' }),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('error', (err) => resolve({ status: 0, error: String(err) }))
        // A response cut off while its body was read counts as no answer.
        res.on('aborted', () => resolve({ status: 0, error: 'response aborted' }))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let parsed: PostResult['body']
          try {
            parsed = JSON.parse(text) as PostResult['body']
          } catch {
            parsed = { error: text }
          }
          const retryAfter = res.headers['retry-after']
          resolve({ status: res.statusCode ?? 0, body: parsed, retryAfter: retryAfter ?? null })
        })
      },
    )
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, error: String(err), errorCode: err.code }))
    req.end(body)
  })
}

// ---------------------------------------------------------------------------------
// Ingest clients

/** What a client learnt about each payload id (`data.cid`) it sent. */
export interface IngestLedger {
  /** Answered 202: must come out of the pipeline, crash or not. */
  acked: Set<string>
  /**
   * Answered 503/429 by the node itself, or the connection refused: never queued, must
   * never come out. Not BINGE_OUTCOME_UNKNOWN: that 503 says a peer may hold them.
   */
  rejected: Set<string>
  /** No answer, BINGE_OUTCOME_UNKNOWN, or an answer we cannot classify: may or may not come out. */
  unknown: Set<string>
  /** Count of answers by HTTP status (0: no answer). */
  statuses: Map<number, number>
  /** A 202 whose ids did not match the events sent: the node broke its contract. */
  malformed: string[]
}

export interface IngestClients {
  ledger: IngestLedger
  /** Hold new requests (those already sent finish); resume() lets them go again. */
  pause(): void
  resume(): void
  /** Resolves once every client has finished its current request and stopped. */
  stop(): Promise<void>
}

export interface IngestClientOptions {
  clients: number
  /** The node to post to right now; undefined while it is down. */
  target: () => string | undefined
  /** Largest batch; a client sends single objects about half the time. */
  maxBatch?: number
  /** Names the payload ids, so two harnesses in one process never collide. */
  prefix?: string
  /** Reuse connections (default) or open one per request. */
  keepAlive?: boolean
  random?: () => number
}

/**
 * `clients` loops, each POSTing one event or a small batch at a time to `target()`,
 * every payload with a unique `cid`. Connection errors and 503s are retried with new
 * payloads after a short poll interval; the node being down is normal here.
 */
export function startIngestClients(options: IngestClientOptions): IngestClients {
  const { clients, target, maxBatch = 8, prefix = 'c', keepAlive = true, random = Math.random } = options
  const ledger: IngestLedger = { acked: new Set(), rejected: new Set(), unknown: new Set(), statuses: new Map(), malformed: [] }
  let stopped = false
  let paused = false

  const loop = async (client: number) => {
    let n = 0
    while (!stopped) {
      const url = target()
      if (paused || url === undefined) {
        await delay(10)
        continue
      }
      const size = random() < 0.5 ? 1 : 2 + Math.floor(random() * (maxBatch - 1))
      const cids = Array.from({ length: size }, () => `${prefix}${client}-${n++}`)
      const payload = cids.map((cid) => ({ cid, client, sentAt: Date.now() }))
      const res = await postEvents(url, size === 1 ? payload[0]! : payload, { keepAlive })
      ledger.statuses.set(res.status, (ledger.statuses.get(res.status) ?? 0) + 1)
      if (res.status === 202) {
        if (res.body?.ids?.length !== size) ledger.malformed.push(`${cids.join(',')}: ${JSON.stringify(res.body)}`)
        for (const cid of cids) ledger.acked.add(cid)
      } else if (
        ((res.status === 503 || res.status === 429) && res.body?.code !== undefined && res.body.code !== 'BINGE_OUTCOME_UNKNOWN') ||
        res.errorCode === 'ECONNREFUSED'
      ) {
        for (const cid of cids) ledger.rejected.add(cid)
        await delay(10) // the node is down or busy: poll, do not spin
      } else {
        for (const cid of cids) ledger.unknown.add(cid)
        if (res.status === 0 || res.status === 503) await delay(10)
      }
    }
  }
  const loops = Array.from({ length: clients }, (_, i) => loop(i))
  return {
    ledger,
    pause: () => void (paused = true),
    resume: () => void (paused = false),
    stop: async () => {
      stopped = true
      await Promise.all(loops)
    },
  }
}

// ---------------------------------------------------------------------------------
// File output

export interface OutputRecord {
  id: string
  pipeline: string
  node: string
  origin: string
  receivedAt: string
  data: { cid?: string } & Record<string, unknown>
}

export interface OutputRead {
  records: OutputRecord[]
  /** How many times each payload id (`data.cid`, else the event id) appears. */
  counts: Map<string, number>
  /** A last line without its newline: skipped (see below). */
  tornTail: boolean
  /** Lines that did not parse whole: a torn line with a later line appended to it. */
  tornLines: string[]
}

/**
 * Read a file output (JSON lines), tolerating what kill -9 leaves behind.
 *
 * A partial final line is skipped. That is safe: the output resolves a write only after
 * write + fdatasync, and the event is acked only after that, so a line still being
 * written at the kill belongs to an event that was not acked; it stays in flight on
 * disk and is written again, whole, after the restart.
 *
 * A restarted node appends to the file, so a torn line can also end up in the middle,
 * glued to the first line the next process wrote ("{...torn{"id":...}"). The complete
 * record is then the last `{"id":` in that line; it is salvaged and the fragment before
 * it dropped, for the same reason as above.
 */
export function readOutput(file: string): OutputRead {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''
  const lines = text.split('\n')
  const last = lines.pop()!
  const result: OutputRead = { records: [], counts: new Map(), tornTail: last !== '', tornLines: [] }
  for (const line of lines) {
    if (line === '') continue
    let record: OutputRecord
    try {
      record = JSON.parse(line) as OutputRecord
    } catch {
      result.tornLines.push(line)
      const start = line.lastIndexOf('{"id":')
      if (start <= 0) continue
      try {
        record = JSON.parse(line.slice(start)) as OutputRecord
      } catch {
        continue
      }
    }
    result.records.push(record)
    const key = typeof record.data?.cid === 'string' ? record.data.cid : record.id
    result.counts.set(key, (result.counts.get(key) ?? 0) + 1)
  }
  return result
}

export interface DeliveryReport {
  acked: number
  /** Acknowledged ids missing from the output. */
  lost: string[]
  /** Extra copies: lines beyond the first for each id. */
  duplicates: number
  /** Ids appearing more than once. */
  duplicatedIds: number
  /** Ids in the output that were never sent, or were refused: must be none. */
  phantoms: string[]
  /** Unknown-fate ids (no answer) that did come out. */
  unknownDelivered: number
}

export function compareDelivery(ledger: IngestLedger, output: OutputRead): DeliveryReport {
  const lost = [...ledger.acked].filter((cid) => !output.counts.has(cid))
  let duplicates = 0
  let duplicatedIds = 0
  const phantoms: string[] = []
  let unknownDelivered = 0
  for (const [cid, count] of output.counts) {
    if (count > 1) {
      duplicates += count - 1
      duplicatedIds++
    }
    if (ledger.unknown.has(cid)) unknownDelivered++
    else if (!ledger.acked.has(cid)) phantoms.push(cid)
  }
  return { acked: ledger.acked.size, lost, duplicates, duplicatedIds, phantoms, unknownDelivered }
}

/** A small seeded PRNG (mulberry32), so a failing run can be replayed with its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Run the built CLI once (`binge ARGS`) to its end, with `stdin` fed and closed; killed after 60 s. */
export function runCli(args: string[], options: { stdin?: string; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { cwd: options.cwd ?? repoRoot, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c))
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    child.stdin.end(options.stdin ?? '')
  })
}

// Helpers for the mesh tests: real nodes as child processes (through node-process.ts),
// each with its own data dir and OS-chosen HTTP and libp2p ports, bootstrapped from the
// addresses the previous node logged; local webhooks that count what they receive; and
// typed views of /stats with the mesh fields.
// Invariants: every server a test starts here is closed by `closeWebhooks` (call it
// from afterEach next to `killAllNodes`); nothing waits a fixed time, all polls.

import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import type { AddressInfo } from 'node:net'
import { parse, stringify } from 'yaml'
import { NodeProcess, getJson, waitFor, writeConfig, type LogLine, type NodeConfig, type NodeStats } from './node-process.js'

// ---------------------------------------------------------------------------------
// Webhooks

export interface Webhook {
  url: string
  /** How many times each payload id (`data.cid`, else the event id) arrived. */
  counts: Map<string, number>
  /** Each envelope's `node`, counted: which node processed what. */
  byNode: Map<string, number>
  /** Envelopes received in total. */
  received(): number
  /** A held webhook answers nothing until released; then it answers all at once, and every later POST at once. */
  release(): void
  close(): Promise<void>
}

interface Envelope {
  id: string
  node?: string
  data?: { cid?: unknown }
}

const webhooks = new Set<Webhook>()

/**
 * A local HTTP endpoint for the `http` output: answers each POST with 200 after
 * `delayMs`, plus `perEventMs` for each envelope in it. Workers hand the output a batch
 * of up to 32 events per POST, so a slow endpoint is slow per event, not per request.
 */
export async function startWebhook(options: { delayMs?: number; perEventMs?: number; held?: boolean } = {}): Promise<Webhook> {
  const { delayMs = 0, perEventMs = 0 } = options
  let held = options.held ?? false
  const waiting: (() => void)[] = []
  const counts = new Map<string, number>()
  const byNode = new Map<string, number>()
  let total = 0
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      let envelopes: Envelope[]
      try {
        const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown
        envelopes = (Array.isArray(parsed) ? parsed : [parsed]) as Envelope[]
      } catch {
        res.writeHead(400).end()
        return
      }
      // Counted when we answer 2xx: that is when the sender takes it as delivered.
      const answer = () => {
        if (res.destroyed) return
        for (const e of envelopes) {
          const key = typeof e.data?.cid === 'string' ? e.data.cid : e.id
          counts.set(key, (counts.get(key) ?? 0) + 1)
          const node = e.node ?? '?'
          byNode.set(node, (byNode.get(node) ?? 0) + 1)
          total++
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      }
      const wait = delayMs + perEventMs * envelopes.length
      const later = () => (wait > 0 ? setTimeout(answer, wait) : answer())
      if (held) waiting.push(later)
      else later()
    })
  })
  server.keepAliveTimeout = 30_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const hook: Webhook = {
    url: `http://127.0.0.1:${port}/hook`,
    counts,
    byNode,
    received: () => total,
    release: () => {
      held = false
      for (const answer of waiting.splice(0)) answer()
    },
    close: () =>
      new Promise<void>((resolve) => {
        webhooks.delete(hook)
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  webhooks.add(hook)
  return hook
}

export async function closeWebhooks(): Promise<void> {
  await Promise.all([...webhooks].map((w) => w.close()))
}

/** Merge the counts of several receivers: an id processed on two nodes counts twice. */
export function mergeCounts(...maps: Map<string, number>[]): Map<string, number> {
  const total = new Map<string, number>()
  for (const m of maps) for (const [k, v] of m) total.set(k, (total.get(k) ?? 0) + v)
  return total
}

export interface ExactlyOnce {
  acked: number
  lost: string[]
  duplicates: number
  phantoms: string[]
}

/** Every acked id exactly once in `counts`; nothing there that was not sent. */
export function checkExactlyOnce(acked: Set<string>, counts: Map<string, number>, mayAppear: Set<string> = new Set()): ExactlyOnce {
  const lost = [...acked].filter((id) => !counts.has(id))
  let duplicates = 0
  const phantoms: string[] = []
  for (const [id, n] of counts) {
    if (n > 1) duplicates += n - 1
    if (!acked.has(id) && !mayAppear.has(id)) phantoms.push(id)
  }
  return { acked: acked.size, lost, duplicates, phantoms }
}

// ---------------------------------------------------------------------------------
// Nodes

export interface PeerStats {
  node: string
  peerId: string
  http: string
  load: { depth: number; inflight: number; highWaterMark: number; lowWaterMark: number; accepting: boolean }
  pipelines: string[]
  ageMs: number
  connected: boolean
  /** Another peer id holds this node name: not believed. */
  conflict?: boolean
  /** Events the node may still hand this peer beyond what its gossip accounted for. */
  credit?: number
}

export type MeshStats = NodeStats & {
  peerId?: string
  queue: NodeStats['queue'] & { handingOff?: number }
  peers: PeerStats[]
}

export interface MeshNodeOptions {
  /** Node id; also the config file name and the data dir name. */
  id: string
  /** Parent dir: the node gets DIR/ID as its data dir and DIR/ID.yaml as its config. */
  dir: string
  /** host:port or multiaddrs; usually `bootstrapOf(otherNode)`. */
  bootstrap?: string[]
  pipelines: Record<string, unknown>
  queue?: Record<string, unknown>
  workers?: number
  /** Extra keys of the mesh section (psk, allowPeers, gossipInterval, ...). */
  mesh?: Record<string, unknown>
  /** Extra keys of the http section (maxBodyBytes, ...). */
  http?: Record<string, unknown>
  env?: NodeJS.ProcessEnv
  /** Log level (default info). */
  logLevel?: string
}

export interface MeshNode {
  id: string
  proc: NodeProcess
  url: string
  configFile: string
  dataDir: string
  /** From "The node joined the mesh.": the node's peer id and its listen multiaddrs. */
  peerId: string
  addrs: string[]
  /** When /readyz first answered 200 (ms since the epoch). */
  readyAt: number
}

export function meshNodeConfig(o: MeshNodeOptions): NodeConfig {
  return {
    node: { id: o.id, dataDir: path.join(o.dir, o.id) },
    http: { listen: '127.0.0.1:0', ...o.http },
    queue: { highWaterMark: 500, lowWaterMark: 200, maxEvents: 100_000, ...o.queue },
    workers: o.workers ?? 4,
    log: { level: o.logLevel ?? 'info' },
    mesh: { listen: '/ip4/127.0.0.1/tcp/0', bootstrap: o.bootstrap ?? [], gossipInterval: '250ms', ...o.mesh },
    pipelines: o.pipelines,
  }
}

/** Write the node's config (again: a restart reuses it) and start it until ready. */
export async function startMeshNode(o: MeshNodeOptions): Promise<MeshNode> {
  const configFile = writeConfig(o.dir, meshNodeConfig(o), `${o.id}.yaml`)
  return launch(o.id, configFile, path.join(o.dir, o.id), o.env)
}

/**
 * Start a node again from the config it ran with (same data dir, so the same peer id).
 * `samePort`: listen on the libp2p port it had, as a real deployment does; a node that
 * names no bootstrap can only be found again at its old address.
 */
export function restartMeshNode(n: MeshNode, options: { samePort?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<MeshNode> {
  if (options.samePort) {
    const config = parse(fs.readFileSync(n.configFile, 'utf8')) as { mesh: { listen: string } }
    config.mesh.listen = `/ip4/127.0.0.1/tcp/${bootstrapOf(n).split(':')[1]}`
    fs.writeFileSync(n.configFile, stringify(config))
  }
  return launch(n.id, n.configFile, n.dataDir, options.env)
}

async function launch(id: string, configFile: string, dataDir: string, env?: NodeJS.ProcessEnv): Promise<MeshNode> {
  // Deadlines for a busy box: several nodes start at once, next to other test files.
  const proc = await NodeProcess.spawn(configFile, { label: id, env, timeoutMs: 90_000 })
  await proc.waitReady(90_000)
  const readyAt = Date.now()
  const joined = await proc.waitForLog((l) => l.msg === 'The node joined the mesh.', 10_000)
  return { id, proc, url: proc.url!, configFile, dataDir, peerId: String(joined.peerId), addrs: (joined.addrs as string[]) ?? [], readyAt }
}

/** A bootstrap entry for `n`: host:port of its first TCP listen address. */
export function bootstrapOf(n: MeshNode): string {
  const addr = n.addrs.find((a) => a.startsWith('/ip4/127.0.0.1/tcp/')) ?? n.addrs[0]
  const m = addr ? /^\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(addr) : null
  if (!m) throw new Error(`node ${n.id} logged no TCP address: ${JSON.stringify(n.addrs)}`)
  return `${m[1]}:${m[2]}`
}

export function meshStats(n: { url?: string }): Promise<MeshStats> {
  return getJson<MeshStats>(`${n.url}/stats`)
}

/** The peers `n` lists as connected (by peer id). */
export async function connectedPeers(n: MeshNode): Promise<Set<string>> {
  const s = await meshStats(n)
  return new Set(s.peers.filter((p) => p.connected).map((p) => p.peerId))
}

/** Wait until `n` lists every one of `others` as a connected peer. */
export async function waitConnected(n: MeshNode, others: MeshNode[], timeoutMs = 30_000): Promise<MeshStats> {
  let last: PeerStats[] = []
  try {
    return await waitFor(
      async () => {
        if (!n.proc.alive) throw new Error(`node ${n.id} exited: ${JSON.stringify(n.proc.exit)}`)
        const s = await meshStats(n)
        last = s.peers
        const connected = new Set(s.peers.filter((p) => p.connected).map((p) => p.peerId))
        return others.every((o) => connected.has(o.peerId)) ? s : undefined
      },
      { timeoutMs, intervalMs: 50, what: `node ${n.id} to list ${others.map((o) => o.id).join(', ')} as connected peers` },
    )
  } catch (err) {
    const seen = last.map((p) => `${p.node}${p.connected ? '' : ' (not connected)'} ${p.ageMs} ms`).join(', ') || 'none'
    throw new Error(`${(err as Error).message}; it lists: ${seen}\n${n.proc.tail(25)}`)
  }
}

/** Wait until every node in `nodes` lists all the others as connected. */
export async function waitFullMesh(nodes: MeshNode[], timeoutMs = 30_000): Promise<void> {
  await Promise.all(
    nodes.map((n) =>
      waitConnected(
        n,
        nodes.filter((o) => o !== n),
        timeoutMs,
      ),
    ),
  )
}

export function logsOf(n: MeshNode, msg: string): LogLine[] {
  return n.proc.logs.filter((l) => l.msg === msg)
}

/** POST to a path of the node (JSON), returning the status and parsed body. */
export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  })
  const text = await res.text()
  let parsed: Record<string, unknown>
  try {
    parsed = JSON.parse(text) as Record<string, unknown>
  } catch {
    parsed = { text }
  }
  return { status: res.status, body: parsed }
}

export { waitFor }

/** Each warning or error message the node logged, with how many times: for failure reports. */
export function warnings(n: MeshNode): Record<string, number> {
  const out: Record<string, number> = {}
  for (const l of n.proc.logs) if ((l.level ?? 0) >= 40) out[String(l.msg)] = (out[String(l.msg)] ?? 0) + 1
  return out
}

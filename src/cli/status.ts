// `binge status [--url URL]`: one node's view of itself and of the mesh, read from its
// GET /stats and printed as a table. Read-only; exit 1 when the node cannot be reached
// or does not answer like a binge node, 2 for a URL that is not one.
import { BingeError } from '../errors.js'
import type { NodeStats } from '../http/api.js'
import type { PeerView } from '../mesh/peer-table.js'

export const defaultStatusUrl = 'http://127.0.0.1:8080'

/** The node did not answer GET /stats with a binge stats document. */
export class StatsUnavailableError extends BingeError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('BINGE_STATS_UNAVAILABLE', message, options)
    this.name = 'StatsUnavailableError'
  }
}

/** The node's GET /stats; throws StatsUnavailableError with the reason. */
export async function fetchStats(baseUrl: string, options: { signal?: AbortSignal } = {}): Promise<NodeStats> {
  const url = `${baseUrl.replace(/\/+$/, '')}/stats`
  const signal = options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(5_000)]) : AbortSignal.timeout(5_000)
  let res: Response
  try {
    res = await fetch(url, { signal })
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause
    throw new StatsUnavailableError(`GET ${url} failed: ${cause?.code ?? (err as Error).message}`, { cause: err })
  }
  const text = await res.text()
  if (res.status !== 200) throw new StatsUnavailableError(`GET ${url} answered ${res.status}: ${text.slice(0, 200)}`)
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw new StatsUnavailableError(`GET ${url} did not answer JSON; is it a binge node?`)
  }
  const stats = body as Partial<NodeStats>
  if (typeof stats.node !== 'string' || typeof stats.queue !== 'object' || !Array.isArray(stats.peers)) {
    throw new StatsUnavailableError(`GET ${url} answered JSON without node, queue and peers; is it a binge node?`)
  }
  return stats as NodeStats
}

/** Columns padded to their widest cell, two spaces apart, the header first. */
export function formatTable(header: string[], rows: string[][], indent = ''): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) =>
    indent +
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

export function formatAge(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`
  if (ms < 120_000) return `${Math.round(ms / 1000)}s`
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)}m`
  return `${Math.round(ms / 3_600_000)}h`
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024
    i++
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`
}

function uptime(seconds: number): string {
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  return h > 0 ? `${h}h${m}m` : m > 0 ? `${m}m${s}s` : `${s}s`
}

function peerRow(p: PeerView): string[] {
  const l = p.load
  return [
    p.node,
    p.http,
    p.connected ? 'yes' : 'no',
    `${formatAge(p.ageMs)} ago`,
    String(l.depth),
    String(l.inflight),
    `${l.lowWaterMark}/${l.highWaterMark}/${l.maxEvents}`,
    l.accepting ? 'yes' : 'no',
    String(l.drainRate),
    p.pipelines.length > 0 ? p.pipelines.join(', ') : '(relay)',
  ]
}

/** The status report: this node, its queue and counters, then one row per known peer. */
export function formatStatus(stats: NodeStats, url: string): string {
  const q = stats.queue
  const c = stats.counters
  const lines = [
    `${stats.node}  ${url}  ${stats.phase}  up ${uptime(stats.uptimeSeconds)}${stats.peerId ? `  peer ${stats.peerId}` : '  (no mesh)'}`,
    `queue     ${q.mode}: ${q.unprocessed} unprocessed, ${q.inflight} in flight, ${q.handingOff ?? 0} handing off, ${q.deadletter} dead-lettered (${formatBytes(q.bytes)})`,
    `counters  received ${c.received}, processed ${c.processed}, filtered ${c.filtered ?? 0}, failed ${c.failed}, ` +
      `handed off ${c.handedOff}, handed in ${c.handedIn}, taken back ${c.takenBack ?? 0}, rejected ${c.rejected}`,
    '',
  ]
  if (stats.peers.length === 0) {
    lines.push(stats.peerId ? 'peers     none known yet' : 'peers     none: this node has no mesh section')
  } else {
    const peers = [...stats.peers].sort((a, b) => a.node.localeCompare(b.node))
    const header = ['PEER', 'HTTP', 'CONNECTED', 'HEARD', 'DEPTH', 'IN FLIGHT', 'LOW/HIGH/MAX', 'ACCEPTING', 'DRAIN/S', 'PIPELINES']
    lines.push(formatTable(header, peers.map(peerRow)))
  }
  return `${lines.join('\n')}\n`
}

export async function runStatus(urlArg: string | undefined): Promise<number> {
  const url = (urlArg ?? process.env.BINGE_URL ?? defaultStatusUrl).replace(/\/+$/, '')
  try {
    const parsed = new URL(url)
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http')
  } catch {
    process.stderr.write(`binge status: "${url}" is not an http:// URL (write --url http://HOST:PORT)\n`)
    return 2
  }
  try {
    process.stdout.write(formatStatus(await fetchStats(url), url))
    return 0
  } catch (err) {
    if (!(err instanceof StatsUnavailableError)) throw err
    process.stderr.write(`binge status: ${err.message}\n`)
    return 1
  }
}

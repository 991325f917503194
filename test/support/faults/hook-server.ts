// The webhook every node outputs to (part of the fault harness: ../faults.ts).

import http from 'node:http'
import type net from 'node:net'

export interface HookRecord {
  /** The ingest client's payload id (`data.cid`). */
  cid: string
  /** The node whose output POSTed it (the envelope's `node`). */
  node: string
  /** When the hook read it (ms since the epoch, this process's clock). */
  at: number
}

/**
 * An HTTP endpoint standing in for a remote webhook: it records each envelope of each
 * POST as it arrives (before answering: a node killed while waiting for the answer has
 * output the events, and will output them again after its restart), then answers 200
 * after the delay set for the posting node. A delay is how a test slows a node's
 * processing down so that it overflows.
 */
export class HookServer {
  readonly records: HookRecord[] = []
  private readonly delays = new Map<string, number>()
  private readonly timers = new Set<NodeJS.Timeout>()

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  static async start(): Promise<HookServer> {
    const server = http.createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as net.AddressInfo
    const hook = new HookServer(server, `http://127.0.0.1:${port}/hook`)
    server.on('request', (req, res) => hook.handle(req, res))
    return hook
  }

  setDelay(node: string, ms: number): void {
    this.delays.set(node, ms)
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t)
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('error', () => undefined)
    res.on('error', () => undefined)
    req.on('end', () => {
      let node = ''
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Array<{ node?: string; id?: string; data?: { cid?: unknown } }>
        const at = Date.now()
        for (const e of body) {
          node = String(e.node)
          this.records.push({ cid: typeof e.data?.cid === 'string' ? e.data.cid : String(e.id), node, at })
        }
      } catch {
        res.writeHead(400).end('{"error":"bad json"}')
        return
      }
      const answer = () => {
        if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      }
      const delay = this.delays.get(node) ?? 0
      if (delay <= 0) return answer()
      const timer = setTimeout(() => {
        this.timers.delete(timer)
        answer()
      }, delay)
      this.timers.add(timer)
    })
  }
}

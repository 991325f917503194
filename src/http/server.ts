// The socket side of the HTTP layer: listen, bound how long a slow client may hold a
// socket, and on stop refuse new connections while requests already inside finish.
import { getRequestListener } from '@hono/node-server'
import type { Hono } from 'hono'
import { type IncomingMessage, type RequestListener, type Server, type ServerResponse, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { splitHostPort } from '../util/host-port.js'

export interface HttpServerOptions {
  listen: string
  requestTimeoutMs: number
  /** Answers the requests it takes (returns true) before the app sees them: the ingest hot path. */
  first?: (req: IncomingMessage, res: ServerResponse) => boolean
}

/** A quarter of the timeout, at most a second: a request is cut off within 25% of its time. */
export function checkingInterval(requestTimeoutMs: number): number {
  return Math.max(10, Math.min(Math.floor(requestTimeoutMs / 4), 1_000))
}

export class HttpServer {
  private server?: Server

  constructor(
    private readonly app: Hono,
    private readonly options: HttpServerOptions,
  ) {}

  async start(): Promise<AddressInfo> {
    const parsed = splitHostPort(this.options.listen)
    if (!parsed) throw new Error(`http.listen "${this.options.listen}" is not host:port`) // the config schema refuses it first
    // An empty host means every interface.
    const hostname = parsed.host || '0.0.0.0'
    const { port } = parsed
    const timeout = this.options.requestTimeoutMs
    return new Promise((resolve, reject) => {
      const first = this.options.first
      const app: RequestListener = getRequestListener(this.app.fetch, { hostname })
      const serverOptions = {
        requestTimeout: timeout,
        headersTimeout: Math.min(timeout, 60_000),
        keepAliveTimeout: 5_000,
        // Node checks both timeouts only this often (30 s by default), so a slow
        // client could hold a socket that long past them: check in proportion.
        connectionsCheckingInterval: checkingInterval(timeout),
      }
      // Node's listener tries `first`, then hands the rest to the app.
      const server = createServer(serverOptions, first ? (req, res) => first(req, res) || app(req, res) : app)
      server.listen(port, hostname)
      server.once('error', reject)
      server.once('listening', () => {
        server.off('error', reject)
        this.server = server
        resolve(server.address() as AddressInfo)
      })
    })
  }

  address(): AddressInfo | undefined {
    return (this.server?.address() as AddressInfo | null) ?? undefined
  }

  /** Stop listening; requests in progress finish, idle keep-alive sockets are closed. */
  async stop(): Promise<void> {
    const server = this.server
    if (!server) return
    this.server = undefined
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    server.closeIdleConnections()
    const force = setTimeout(() => server.closeAllConnections(), 10_000)
    await closed
    clearTimeout(force)
  }
}

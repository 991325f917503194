// The HTTP surface of a node (docs/design.md §3). Routes only translate: parse and check
// the request, call the node, render the answer. Every failure is a BingeError that
// onError renders as JSON with its status, so no route formats errors of its own.
import { Hono, type Context } from 'hono'
import { BingeError } from '../errors.js'
import type { NodeApi } from './api.js'
import type { IncomingMessage } from 'node:http'
import { parseEvents } from '../events/parse-events.js'
import { phaseRefusal } from '../ingest/ingest.js'
import { readBody, readNodeBody } from './body.js'
import { dashboardRoutes } from './dashboard/routes.js'
import { type IngestRouteOptions, acceptRequest, checkToken, errorAnswer } from './ingest-route.js'

export type AppOptions = IngestRouteOptions

/**
 * The body's bytes, at most `limit`: from Node's request stream when the app runs under
 * @hono/node-server (`c.env.incoming`), else (app.request in tests) the Web body.
 */
function requestBody(c: Context, limit: number): Promise<Buffer> {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming
  const length = c.req.header('content-length')
  return incoming ? readNodeBody(incoming, length, limit) : readBody(c.req.raw.body, length, limit)
}

export function createApp(node: NodeApi, options: AppOptions): Hono {
  const app = new Hono()

  app.onError((err, c) => {
    const answer = errorAnswer(err, node.phase())
    for (const [name, value] of Object.entries(answer.headers)) c.header(name, value)
    return c.json(answer.body, answer.status as 400)
  })
  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${c.req.path}`, code: 'BINGE_NOT_FOUND' }, 404))

  // Event data is readable through the API, so the token guards reads of it too.
  const guarded = (c: Context) => checkToken(c.req.header('authorization'), options.authToken)

  // A node serves these from Node's listener (ingest-route.ts); this route is the same
  // handler for app.request() and any server that runs the app alone.
  const ingest = async (c: Context, pipeline?: string) => {
    const request = { header: (name: string) => c.req.header(name), body: (limit: number) => requestBody(c, limit) }
    return c.json(await acceptRequest(node, options, request, pipeline), 202)
  }

  app.post('/events', (c) => ingest(c))
  app.post('/events/:pipeline', (c) => ingest(c, c.req.param('pipeline')))

  app.get('/healthz', (c) => c.json({ status: 'ok', node: node.nodeId }))
  app.get('/readyz', (c) => {
    const unavailable = phaseRefusal(node.phase())
    if (unavailable) throw unavailable
    return c.json({ status: 'ready', node: node.nodeId })
  })
  app.get('/stats', (c) => c.json(node.stats()))
  dashboardRoutes(app, node, { authRequired: options.authToken !== '' })
  app.get('/metrics', async (c) => {
    const m = await node.metrics()
    return c.body(m.body, 200, { 'content-type': m.contentType })
  })

  app.get('/events/:id', async (c) => {
    guarded(c)
    const id = c.req.param('id')
    const trace = await node.trace(id)
    if (!trace) throw new BingeError('BINGE_NOT_FOUND', `no trace of event "${id}" on this node (traces keep the most recent events only)`)
    return c.json({ id, node: node.nodeId, trace })
  })

  app.get('/deadletter', async (c) => {
    guarded(c)
    const raw = c.req.query('limit') ?? '1000'
    const limit = Number(raw)
    if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) {
      throw new BingeError('BINGE_BAD_REQUEST', `query parameter limit must be an integer from 1 to 100000, got "${raw}"`)
    }
    return c.json(await node.listDeadletter(limit))
  })

  app.post('/deadletter/replay', async (c) => {
    guarded(c)
    const text = (await requestBody(c, options.maxBodyBytes)).toString('utf8')
    const request = text.trim() === '' ? {} : parseEvents(text, 'json').events[0]
    const ids = request?.ids
    if (ids !== undefined && !(Array.isArray(ids) && ids.every((id) => typeof id === 'string'))) {
      throw new BingeError('BINGE_BAD_REQUEST', 'ids must be an array of event id strings, or absent to replay everything')
    }
    const replayed = await node.replayDeadletter(ids as string[] | undefined)
    return c.json({ count: replayed.length, ids: replayed })
  })

  return app
}

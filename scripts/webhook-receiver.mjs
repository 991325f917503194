#!/usr/bin/env node
// A tiny webhook receiver for the example mesh: the `webhook` service of
// docker-compose.yml, and what `binge mesh up --webhook-receiver` runs next to the
// nodes. It answers every POST with 200, prints one line per event it received, and
// shows the last ones at GET / so the mesh does something you can see. Plain Node, no
// dependencies: it runs from the same image as binge. Nothing here is durable.
//
//   node scripts/webhook-receiver.mjs [--listen HOST:PORT]   (or WEBHOOK_LISTEN; default 127.0.0.1:9000)
//
// WEBHOOK_FAIL=/saas,/iot/overheat makes POSTs to paths starting with those answer 503,
// to watch retries, dead letters and alerts happen.
//
//   POST /any/path   a JSON object or array (binge's http output sends an array of envelopes)
//   GET  /           {"count": N, "byPath": {...}, "last": [{path, at, body}, ...]}  (the last 100)
//   GET  /healthz    200
import http from 'node:http'
import { pathToFileURL } from 'node:url'

const keepLast = 100
const maxBodyBytes = 10 * 1024 * 1024

/**
 * Start a receiver; resolves once it listens. `print` gets one line per event received;
 * a POST to a path for which `fail(path)` is true is answered 503 and not counted.
 */
export async function startReceiver({
  listen = '127.0.0.1:9000',
  print = (line) => process.stdout.write(`${line}\n`),
  fail = () => false,
} = {}) {
  const i = listen.lastIndexOf(':')
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0'
  const port = Number(listen.slice(i + 1))
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`expected --listen HOST:PORT, got "${listen}"`)

  const last = []
  const byPath = {}
  let count = 0

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method === 'GET' && path === '/healthz') return reply(res, 200, { ok: true })
    if (req.method === 'GET' && path === '/') return reply(res, 200, { count, byPath, last })
    if (req.method !== 'POST') return reply(res, 405, { error: 'POST JSON to any path; GET / lists what arrived' })
    if (fail(path)) {
      print(`${path}: answered 503 (failing on purpose)`)
      req.resume()
      return reply(res, 503, { error: 'failing on purpose' })
    }
    const chunks = []
    let size = 0
    req.on('data', (chunk) => {
      size += chunk.length
      if (size > maxBodyBytes) req.destroy()
      else chunks.push(chunk)
    })
    req.on('end', () => {
      let body
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      } catch (err) {
        return reply(res, 400, { error: `not JSON: ${err.message}` })
      }
      const items = Array.isArray(body) ? body : [body]
      const at = new Date().toISOString()
      for (const item of items) {
        count++
        byPath[path] = (byPath[path] ?? 0) + 1
        last.push({ path, at, body: item })
        if (last.length > keepLast) last.shift()
        print(describe(path, item))
      }
      reply(res, 200, { received: items.length })
    })
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  const address = server.address()
  return {
    url: `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

/** One readable line: where it came from (a binge envelope says) and the data. */
function describe(path, item) {
  const isEnvelope = item && typeof item === 'object' && 'data' in item && 'pipeline' in item
  const from = isEnvelope
    ? ` ${item.node}/${item.pipeline}${item.origin && item.origin !== item.node ? ` (received at ${item.origin})` : ''}`
    : ''
  const data = JSON.stringify(isEnvelope ? item.data : item)
  return `${path}${from}: ${data.length > 300 ? `${data.slice(0, 300)}…` : data}`
}

function listenArgument(argv) {
  const at = argv.indexOf('--listen')
  if (at >= 0) return argv[at + 1]
  return argv.find((a) => a.startsWith('--listen='))?.slice('--listen='.length)
}

/** The command line: `--listen HOST:PORT` (or WEBHOOK_LISTEN), WEBHOOK_FAIL; also `binge webhook-receiver`. */
export async function main() {
  const listen = listenArgument(process.argv.slice(2)) ?? process.env.WEBHOOK_LISTEN ?? '127.0.0.1:9000'
  let receiver
  try {
    const failing = (process.env.WEBHOOK_FAIL ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)
    receiver = await startReceiver({ listen, fail: (path) => failing.some((prefix) => path.startsWith(prefix)) })
  } catch (err) {
    process.stderr.write(`webhook-receiver: cannot listen on ${listen}: ${err.message}\n`)
    process.exit(1)
  }
  process.stdout.write(`webhook-receiver: listening on ${receiver.url} (GET / shows what arrived)\n`)
  const stop = () => void receiver.close().then(() => process.exit(0))
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

// Run as a script, not bundled into binge (whose `binge webhook-receiver` calls main()).
// Not awaited: main() handles its own failures, and an awaiting top level could not be
// bundled as CommonJS (the single executable's main script).
const asScript =
  import.meta.url?.endsWith('/webhook-receiver.mjs') && process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href
if (asScript) void main()

#!/usr/bin/env node
// An attacker's review, re-run against a real node: one `binge start` child process (an
// auth token, a 2 s request timeout, a file output, a mesh on loopback with a psk) is
// sent malformed, oversized, slow, unauthenticated and otherwise hostile HTTP requests
// and mesh connections, one at a time. For each case it prints the expected and the
// actual outcome, how much /stats counters.received moved, and whether the output file
// got a line from it. Mesh: hosts without or with a wrong psk must not connect; a psk
// holder that never announced is refused handoff and trace; an announced member's
// handoffs must meet the HTTP checks. Then a few valid events show the node still works.
// Last, an open mesh with no psk must be refused by `binge validate` and `binge start`.
//
//   npx tsc -p tsconfig.json && node scripts/hostile.mjs
//
// Exits 1 if any case is not as expected, the node died, or a refused request wrote an
// event. BINGE_KEEP_TMP=1 keeps the temp dir.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const cli = join(root, 'dist/src/cli/main.js')
if (!existsSync(cli)) {
  console.error('hostile: dist/src/cli/main.js is missing; build first (npx tsc -p tsconfig.json)')
  process.exit(2)
}
const { createPeerHost } = await import(join(root, 'dist/src/mesh/peer-host.js'))
const { request: meshRequest } = await import(join(root, 'dist/src/mesh/frames.js'))
const { generateKeyPair } = await import('@libp2p/crypto/keys')
const { multiaddr } = await import('@multiformats/multiaddr')
const { peerIdFromString } = await import('@libp2p/peer-id')
const { loadTopic } = await import(join(root, 'dist/src/mesh/announcement.js'))

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const tmp = mkdtempSync(join(tmpdir(), 'binge-hostile-'))
const token = `hostile-token-${Math.random().toString(36).slice(2)}`
const psk = 'a'.repeat(16) + Math.random().toString(16).slice(2).padEnd(48, '0').slice(0, 48)
const outFile = join(tmp, 'out', 'all.jsonl')
const maxBodyBytes = 1024 * 1024
const requestTimeoutMs = 2_000

const nodeYaml = `node:
  id: hostile-node
  dataDir: ${join(tmp, 'data')}
http:
  listen: 127.0.0.1:0
  authToken: ${token}
  maxBodyBytes: 1MiB
  requestTimeout: 2s
log:
  level: info
mesh:
  listen: /ip4/127.0.0.1/tcp/0
  psk: ${psk}
pipelines:
  all:
    outputs:
      - file: { path: ${outFile} }
`
writeFileSync(join(tmp, 'node.yaml'), nodeYaml)

// ---------------------------------------------------------------- the node
const logLines = []
let exited
const child = spawn(process.execPath, [cli, 'start', '--config', join(tmp, 'node.yaml')], { cwd: tmp, stdio: ['ignore', 'ignore', 'pipe'] })
const exitedP = new Promise((resolve) => child.once('exit', (code, signal) => resolve((exited = { code, signal }))))
let stderrBuf = ''
child.stderr.setEncoding('utf8')
child.stderr.on('data', (s) => {
  stderrBuf += s
  let i
  while ((i = stderrBuf.indexOf('\n')) >= 0) {
    const line = stderrBuf.slice(0, i)
    stderrBuf = stderrBuf.slice(i + 1)
    try {
      logLines.push(JSON.parse(line))
    } catch {
      logLines.push({ msg: line })
    }
  }
})
let stopping = false
const stopNode = async () => {
  if (exited) return exited
  stopping = true
  child.kill('SIGTERM')
  const done = await Promise.race([exitedP, sleep(20_000).then(() => undefined)])
  if (done) return done
  child.kill('SIGKILL')
  return exitedP
}
const cleanup = () => {
  if (!exited)
    try {
      child.kill('SIGKILL')
    } catch {}
  if (process.env.BINGE_KEEP_TMP !== '1') rmSync(tmp, { recursive: true, force: true })
}
process.once('SIGINT', () => {
  cleanup()
  process.exit(130)
})

async function waitFor(what, fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (exited) throw new Error(`the node exited (${JSON.stringify(exited)}) while waiting for ${what}`)
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(200)
  }
}

// ---------------------------------------------------------------- raw HTTP
let port
/**
 * Send `parts` (strings or Buffers, or numbers: a pause in ms) on a fresh socket and read
 * one response. Resolves { status, headers, body, ms } (status 'ERR:code', 'CLOSED' or
 * 'TIMEOUT' when there was none).
 */
function raw(parts, timeoutMs = 20_000) {
  return new Promise((resolve) => {
    const started = Date.now()
    const socket = net.connect({ host: '127.0.0.1', port })
    let buf = Buffer.alloc(0)
    let head
    let settled = false
    const finish = (fallback) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      if (head) resolve({ ...head, body: buf.subarray(head.bodyStart).toString('utf8'), ms: Date.now() - started })
      else resolve({ status: fallback, headers: {}, body: '', ms: Date.now() - started })
    }
    const timer = setTimeout(() => finish('TIMEOUT'), timeoutMs)
    const complete = () => {
      if (!head) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const lines = buf.subarray(0, end).toString('latin1').split('\r\n')
        const headers = {}
        for (const l of lines.slice(1)) {
          const c = l.indexOf(':')
          headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim()
        }
        head = { status: Number(lines[0].split(' ')[1]), headers, bodyStart: end + 4 }
      }
      const got = buf.length - head.bodyStart
      const length = head.headers['content-length']
      if (length !== undefined && got >= Number(length)) finish()
      else if (head.headers['transfer-encoding'] === 'chunked' && buf.subarray(head.bodyStart).includes('0\r\n\r\n')) {
        // Decode the chunks.
        const text = buf.subarray(head.bodyStart).toString('utf8')
        let out = ''
        let rest = text
        for (;;) {
          const nl = rest.indexOf('\r\n')
          const size = parseInt(rest.slice(0, nl), 16)
          if (!size) break
          out += rest.slice(nl + 2, nl + 2 + size)
          rest = rest.slice(nl + 2 + size + 2)
        }
        buf = Buffer.concat([buf.subarray(0, head.bodyStart), Buffer.from(out)])
        head.headers['content-length'] = String(Buffer.byteLength(out))
        finish()
      }
    }
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      complete()
    })
    socket.on('end', () => finish('CLOSED'))
    socket.on('close', () => finish('CLOSED'))
    socket.on('error', (err) => finish(`ERR:${err.code ?? err.message}`))
    socket.once('connect', async () => {
      for (const p of parts) {
        if (settled || socket.destroyed) return
        if (typeof p === 'number') await sleep(p)
        else await new Promise((r) => socket.write(p, () => r()))
      }
    })
  })
}

/** One HTTP/1.1 request as bytes: Content-Length from the body unless `headers` sets one (null: none). */
function build(method, path, { body, headers = {}, auth = true, type = 'application/json' } = {}) {
  const h = { Host: `127.0.0.1:${port}`, Connection: 'close' }
  if (auth) h.Authorization = `Bearer ${token}`
  if (type !== null && body !== undefined) h['Content-Type'] = type
  if (body !== undefined) h['Content-Length'] = String(Buffer.byteLength(body))
  Object.assign(h, headers)
  const lines = Object.entries(h)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k}: ${v}`)
  const headBytes = Buffer.from(`${method} ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`, 'latin1')
  return body === undefined ? [headBytes] : [headBytes, Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8')]
}
const http = (method, path, opts) => raw(build(method, path, opts))
const json = (r) => {
  try {
    return JSON.parse(r.body)
  } catch {
    return undefined
  }
}
const stats = async () => json(await http('GET', '/stats', { auth: false }))

// ---------------------------------------------------------------- the cases
const results = []
let received = 0
/** Markers of refused cases: no output line may carry one. */
const refusedMarkers = []
/** Markers of accepted events: each must reach the output file. */
const acceptedMarkers = []
let seq = 0
const mark = () => `h${String(++seq).padStart(3, '0')}`

/**
 * Run one case: `send(marker)` returns a response (or a { status } of its own); the case
 * is as expected when `expect` (a status, or a function of the response) holds and, for a
 * refused request, counters.received did not move.
 */
async function hcase(name, expect, send, { accepted = 0, check } = {}) {
  const m = mark()
  const before = received
  let r
  try {
    r = await send(m)
  } catch (err) {
    r = { status: `THREW:${err.message}` }
  }
  const s = await stats().catch(() => undefined)
  const after = s?.counters?.received ?? NaN
  received = Number.isFinite(after) ? after : received
  const delta = after - before
  const statusOk = typeof expect === 'function' ? expect(r) : r.status === expect
  const extra = check ? check(r) : true
  const countOk = accepted ? true : delta === 0
  if (accepted) acceptedMarkers.push(m)
  else refusedMarkers.push(m)
  const body = json(r)
  const note = body?.code ?? (body?.error ? String(body.error).slice(0, 40) : r.ms !== undefined && r.ms > 1000 ? `${r.ms} ms` : '')
  results.push({
    id: m,
    name,
    expected: typeof expect === 'function' ? (expect.label ?? 'see check') : String(expect),
    actual: String(r.status),
    delta,
    note: extra === true ? note : `${note} ${extra}`.trim(),
    ok: statusOk && countOk && extra === true,
    accepted,
  })
  return r
}
const is = (status, label) => Object.assign((r) => r.status === status, { label: label ?? String(status) })
const codeIs = (status, code) => Object.assign((r) => r.status === status && json(r)?.code === code, { label: `${status} ${code}` })

async function httpCases() {
  const post = (body, opts = {}) => http('POST', opts.path ?? '/events', { body, ...opts })
  const B = 'BINGE_BAD_REQUEST'
  // Malformed JSON at various places.
  await hcase('bad JSON: trailing comma', codeIs(400, B), (m) => post(`{"case":"${m}","a":1,}`))
  await hcase('bad JSON: truncated object', codeIs(400, B), (m) => post(`{"case":"${m}","a":`))
  await hcase('bad JSON: garbage after object', codeIs(400, B), (m) => post(`{"case":"${m}"}x`))
  await hcase('bad JSON: two objects, line 2', codeIs(400, B), (m) => post(`{"case":"${m}"}\n{"case":"${m}"}`))
  await hcase('bad JSON: single quotes', codeIs(400, B), (m) => post(`{'case':'${m}'}`))
  await hcase('bad JSON: bad item 3 in array', codeIs(400, B), (m) => post(`[{"case":"${m}"},{"case":"${m}"},{"case":"${m}",]`))
  await hcase('NDJSON: line 3 malformed (all or nothing)', codeIs(400, B), (m) =>
    post(`{"case":"${m}"}\n{"case":"${m}"}\n{"case":`, { type: 'application/x-ndjson' }),
  )
  // Not events.
  await hcase('empty body', codeIs(400, B), () => post(''))
  await hcase('whitespace body', codeIs(400, B), () => post(' \n\t '))
  await hcase('no body, no Content-Length', codeIs(400, B), () => http('POST', '/events', { headers: { 'Content-Length': null } }))
  await hcase('non-object: 42', codeIs(400, B), () => post('42'))
  await hcase('non-object: null', codeIs(400, B), () => post('null'))
  await hcase('non-object: "str"', codeIs(400, B), () => post('"str"'))
  await hcase('empty array', codeIs(400, B), () => post('[]'))
  await hcase('array with a non-object item', codeIs(400, B), (m) => post(`[{"case":"${m}"},3]`))
  await hcase('array of arrays', codeIs(400, B), (m) => post(`[[{"case":"${m}"}]]`))
  await hcase('NDJSON line 2 is an array', codeIs(400, B), (m) => post(`{"case":"${m}"}\n[1]\n`, { type: 'application/x-ndjson' }))
  // Depth.
  const nest = (m, depth) => `${'{"a":'.repeat(depth - 1)}{"case":"${m}"}${'}'.repeat(depth - 1)}`
  await hcase('nesting 65 deep', codeIs(400, B), (m) => post(nest(m, 65)))
  await hcase('nesting 65 deep in array item 1', codeIs(400, B), (m) => post(`[{"case":"${m}"},${nest(m, 65)}]`))
  await hcase('nesting 65 deep, arrays', codeIs(400, B), (m) => post(`{"case":"${m}","a":${'['.repeat(64)}1${']'.repeat(64)}}`))
  await hcase('nesting 100,000 deep', codeIs(400, B), (m) => post(nest(m, 100_000)))
  // Prototype keys.
  await hcase('__proto__ top-level', codeIs(400, B), (m) => post(`{"case":"${m}","__proto__":{"polluted":1}}`))
  await hcase('__proto__ nested', codeIs(400, B), (m) => post(`{"case":"${m}","a":{"b":[{"__proto__":{"x":1}}]}}`))
  await hcase('__proto__ as \\u escape', codeIs(400, B), (m) => post(`{"case":"${m}","__pro\\u0074o__":{}}`))
  await hcase('constructor top-level', codeIs(400, B), (m) => post(`{"case":"${m}","constructor":{"prototype":{"x":1}}}`))
  await hcase('constructor nested', codeIs(400, B), (m) => post(`{"case":"${m}","a":{"constructor":1}}`))
  await hcase('__proto__ in array item 2', codeIs(400, B), (m) => post(`[{"case":"${m}"},{"case":"${m}"},{"__proto__":1}]`))
  await hcase('NDJSON: __proto__ on line 2', codeIs(400, B), (m) =>
    post(`{"case":"${m}"}\n{"case":"${m}","__proto__":{}}\n`, { type: 'application/x-ndjson' }),
  )
  await hcase('NDJSON: nested constructor on line 3', codeIs(400, B), (m) =>
    post(`{"case":"${m}"}\n{"case":"${m}"}\n{"a":{"constructor":{}}}`, { type: 'application/x-ndjson' }),
  )
  // Numbers.
  await hcase('number 1e400', codeIs(400, B), (m) => post(`{"case":"${m}","n":1e400}`))
  await hcase('number -1e400 in a nested array', codeIs(400, B), (m) => post(`{"case":"${m}","a":[1,[2,-1e400]]}`))
  // Size and count.
  const pad = (m, total) => {
    const h = `{"case":"${m}","pad":"`
    return `${h + 'x'.repeat(total - h.length - 2)}"}`
  }
  // The node answers 413 from the declared length alone and closes: the pause lets the
  // answer arrive before the body is written into a closed socket (EPIPE).
  await hcase('body maxBodyBytes + 1', codeIs(413, 'BINGE_PAYLOAD_TOO_LARGE'), (m) => {
    const [h, b] = build('POST', '/events', { body: pad(m, maxBodyBytes + 1) })
    return raw([h, 300, b])
  })
  await hcase('Content-Length 2 MiB, no body sent', codeIs(413, 'BINGE_PAYLOAD_TOO_LARGE'), () =>
    http('POST', '/events', { headers: { 'Content-Length': String(2 * maxBodyBytes), 'Content-Type': 'application/json' } }),
  )
  await hcase('chunked body over maxBodyBytes', codeIs(413, 'BINGE_PAYLOAD_TOO_LARGE'), (m) => {
    const body = Buffer.from(pad(m, maxBodyBytes + 1000))
    const chunk = (b) => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')])
    const parts = build('POST', '/events', { headers: { 'Transfer-Encoding': 'chunked' } })
    for (let i = 0; i < body.length; i += 65536) parts.push(chunk(body.subarray(i, i + 65536)))
    parts.push('0\r\n\r\n')
    return raw(parts)
  })
  const tooMany = (r) => r.status === 413 && /maxEventsPerRequest/.test(json(r)?.error ?? '')
  tooMany.label = '413 maxEventsPerRequest'
  await hcase('1 MiB of {} as an array', tooMany, () => post(`[${'{},'.repeat((maxBodyBytes - 2) / 3).slice(0, maxBodyBytes - 3)}{}]`))
  await hcase('1 MiB of {} as NDJSON', tooMany, () => post('{}\n'.repeat(Math.floor(maxBodyBytes / 3)), { type: 'application/x-ndjson' }))
  // Content type and token.
  await hcase('Content-Type text/plain', codeIs(415, 'BINGE_UNSUPPORTED_MEDIA_TYPE'), (m) =>
    post(`{"case":"${m}"}`, { type: 'text/plain' }),
  )
  await hcase('Content-Type application/xml', codeIs(415, 'BINGE_UNSUPPORTED_MEDIA_TYPE'), (m) =>
    post(`<case>${m}</case>`, { type: 'application/xml' }),
  )
  await hcase('no Authorization', codeIs(401, 'BINGE_UNAUTHORIZED'), (m) => post(`{"case":"${m}"}`, { auth: false }))
  await hcase('wrong token', codeIs(401, 'BINGE_UNAUTHORIZED'), (m) =>
    post(`{"case":"${m}"}`, { auth: false, headers: { Authorization: `Bearer ${token}x` } }),
  )
  await hcase('token as Basic', codeIs(401, 'BINGE_UNAUTHORIZED'), (m) =>
    post(`{"case":"${m}"}`, { auth: false, headers: { Authorization: `Basic ${token}` } }),
  )
  await hcase('token lowercase "bearer"', codeIs(401, 'BINGE_UNAUTHORIZED'), (m) =>
    post(`{"case":"${m}"}`, { auth: false, headers: { Authorization: `bearer ${token}` } }),
  )
  await hcase('token prefix only', codeIs(401, 'BINGE_UNAUTHORIZED'), (m) =>
    post(`{"case":"${m}"}`, { auth: false, headers: { Authorization: `Bearer ${token.slice(0, -1)}` } }),
  )
  await hcase('POST /events/all without token', codeIs(401, 'BINGE_UNAUTHORIZED'), (m) =>
    post(`{"case":"${m}"}`, { auth: false, path: '/events/all' }),
  )
  // Idempotency keys.
  await hcase('Idempotency-Key with a space', codeIs(400, B), (m) => post(`{"case":"${m}"}`, { headers: { 'Idempotency-Key': 'a b' } }))
  await hcase('Idempotency-Key of 201 chars', codeIs(400, B), (m) =>
    post(`{"case":"${m}"}`, { headers: { 'Idempotency-Key': 'k'.repeat(201) } }),
  )
  await hcase('Idempotency-Key empty', codeIs(400, B), (m) => post(`{"case":"${m}"}`, { headers: { 'Idempotency-Key': '' } }))
  const key = `hostile-${Date.now()}`
  let first
  await hcase(
    'Idempotency-Key K: first event (accepted)',
    is(202),
    (m) => post((first = `{"case":"${m}","v":1}`), { headers: { 'Idempotency-Key': key } }),
    { accepted: 1, check: (r) => (json(r)?.ids?.[0] === key ? true : `ids ${r.body}`) },
  )
  await hcase('same K, same event: duplicate', is(202, '202 duplicate'), () => post(first, { headers: { 'Idempotency-Key': key } }), {
    check: (r) => (json(r)?.duplicate === true ? true : 'not duplicate'),
  })
  await hcase('same K, other event', codeIs(422, 'BINGE_IDEMPOTENCY_CONFLICT'), (m) =>
    post(`{"case":"${m}","v":2}`, { headers: { 'Idempotency-Key': key } }),
  )
  await hcase('same K, same event, other pipeline', codeIs(422, 'BINGE_IDEMPOTENCY_CONFLICT'), () =>
    post(first, { path: '/events/all', headers: { 'Idempotency-Key': key } }),
  )
  const batchKey = `${key}-b`
  await hcase(
    'batch keyed K2: [event] (accepted, id K2-0)',
    is(202),
    (m) => post(`[{"case":"${m}","v":1}]`, { headers: { 'Idempotency-Key': batchKey } }),
    { accepted: 1, check: (r) => (json(r)?.ids?.[0] === `${batchKey}-0` ? true : `ids ${r.body}`) },
  )
  await hcase('single keyed K2-0, other event', codeIs(422, 'BINGE_IDEMPOTENCY_CONFLICT'), (m) =>
    post(`{"case":"${m}","v":3}`, { headers: { 'Idempotency-Key': `${batchKey}-0` } }),
  )
  // Slow clients (requestTimeout 2s).
  const onTime = (r) => r.status === 408 && r.ms < requestTimeoutMs + 3_000
  onTime.label = `408 < ${requestTimeoutMs / 1000 + 3} s`
  await hcase('slow body (1 byte / 400 ms)', onTime, (m) => {
    const body = `{"case":"${m}","slow":true}`
    const parts = build('POST', '/events', { body: '', headers: { 'Content-Length': String(body.length) } }).slice(0, 1)
    for (const ch of body.slice(0, 20)) parts.push(400, ch)
    return raw(parts, 15_000)
  })
  await hcase('slow headers (1 line / 500 ms)', onTime, () => {
    const parts = ['POST /events HTTP/1.1\r\n']
    for (let i = 0; i < 16; i++) parts.push(500, `X-Slow-${i}: ${i}\r\n`)
    return raw(parts, 15_000)
  })
  // Malformed HTTP.
  await hcase('header of 20 KB', is(431), (m) => post(`{"case":"${m}"}`, { headers: { 'X-Big': 'x'.repeat(20_000) } }))
  await hcase('1,000 headers', is(431), (m) =>
    post(
      `{"case":"${m}"}`,
      Object.fromEntries([['headers', Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`X-H${i}`, 'v'.repeat(20)]))]]),
    ),
  )
  await hcase('garbage request line', is(400), () => raw(['GARBAGE\r\n\r\n']))
  await hcase('Content-Length and chunked together', is(400), (m) =>
    raw(build('POST', '/events', { body: `5\r\n{"a":\r\n0\r\n\r\n`, headers: { 'Transfer-Encoding': 'chunked', Foo: m } })),
  )
  // Routes.
  await hcase('GET /nope', codeIs(404, 'BINGE_NOT_FOUND'), () => http('GET', '/nope'))
  await hcase('PUT /events', codeIs(404, 'BINGE_NOT_FOUND'), (m) => http('PUT', '/events', { body: `{"case":"${m}"}` }))
  await hcase('POST /events/all/extra', codeIs(404, 'BINGE_NOT_FOUND'), (m) => post(`{"case":"${m}"}`, { path: '/events/all/extra' }))
  await hcase('POST /events/no-such-pipeline', codeIs(404, 'BINGE_NOT_FOUND'), (m) =>
    post(`{"case":"${m}"}`, { path: '/events/no-such-pipeline' }),
  )
  await hcase('POST /events/..%2F..%2Fetc', codeIs(404, 'BINGE_NOT_FOUND'), (m) =>
    post(`{"case":"${m}"}`, { path: '/events/..%2F..%2Fetc' }),
  )
  await hcase('GET /events/unknown-id', codeIs(404, 'BINGE_NOT_FOUND'), () => http('GET', '/events/unknown-id'))
  await hcase('GET /events/<2,000 chars>', codeIs(404, 'BINGE_NOT_FOUND'), () => http('GET', `/events/${'i'.repeat(2000)}`))
  await hcase('GET /events/ID without token', codeIs(401, 'BINGE_UNAUTHORIZED'), () => http('GET', `/events/${key}`, { auth: false }))
  await hcase('GET /deadletter without token', codeIs(401, 'BINGE_UNAUTHORIZED'), () => http('GET', '/deadletter', { auth: false }))
  await hcase('GET /deadletter?limit=0', codeIs(400, B), () => http('GET', '/deadletter?limit=0'))
  await hcase('GET /deadletter?limit=1e9', codeIs(400, B), () => http('GET', '/deadletter?limit=1e9'))
  await hcase('replay: malformed JSON', codeIs(400, B), () => http('POST', '/deadletter/replay', { body: '{"ids":[' }))
  await hcase('replay: ids not an array', codeIs(400, B), () => http('POST', '/deadletter/replay', { body: '{"ids":"all"}' }))
  await hcase('replay: ids of numbers', codeIs(400, B), () => http('POST', '/deadletter/replay', { body: '{"ids":[1,2]}' }))
  await hcase('replay: __proto__', codeIs(400, B), () => http('POST', '/deadletter/replay', { body: '{"__proto__":{"ids":[]}}' }))
  await hcase('replay: without token', codeIs(401, 'BINGE_UNAUTHORIZED'), () =>
    http('POST', '/deadletter/replay', { body: '{}', auth: false }),
  )
  await hcase(
    'replay: unknown ids (nothing)',
    Object.assign((r) => r.status === 200 && json(r)?.count === 0, { label: '200 count 0' }),
    () => http('POST', '/deadletter/replay', { body: '{"ids":["nope"]}' }),
  )
}

// ---------------------------------------------------------------- the mesh
let nodePeerId
let nodeAddr
const hosts = []
async function newHost(key) {
  const host = await createPeerHost({
    privateKey: await generateKeyPair('Ed25519'),
    listen: '/ip4/127.0.0.1/tcp/0',
    psk: key,
    allowPeers: [],
  })
  hosts.push(host)
  await host.start()
  return host
}
/** A mesh case: `run()` resolves { status: text, ok }. */
async function mcase(name, expected, run) {
  const m = mark()
  const before = received
  let r
  try {
    r = await run(m)
  } catch (err) {
    r = { status: `THREW ${err.message.slice(0, 60)}`, ok: false }
  }
  const s = await stats().catch(() => undefined)
  const after = s?.counters?.received ?? NaN
  const handedIn = s?.counters?.handedIn
  received = Number.isFinite(after) ? after : received
  refusedMarkers.push(m)
  results.push({
    id: m,
    name,
    expected,
    actual: r.status,
    delta: after - before,
    note: `handedIn ${handedIn}${r.note ? ` ${r.note}` : ''}`,
    ok: r.ok && after === before && handedIn === 0,
  })
}
async function dialOutcome(host) {
  try {
    await host.dial(multiaddr(nodeAddr), { signal: AbortSignal.timeout(20_000) })
    return { status: 'connected', ok: false }
  } catch (err) {
    return { status: 'dial failed', ok: true, note: err.name ?? '' }
  }
}
const ghostIds = []
const handoffBody = (m, from, kind = 'overflow') => {
  ghostIds.push(`ghost-${m}`)
  return {
    v: 1,
    handoffId: `hostile-${m}`,
    kind,
    from,
    events: [
      {
        id: `ghost-${m}`,
        ...(kind === 'route' ? { pipeline: 'all' } : {}),
        origin: from,
        receivedAt: Date.now(),
        hops: 0,
        data: { case: m },
      },
    ],
  }
}

async function meshCases() {
  await mcase('dial without the psk', 'dial fails', async () => dialOutcome(await newHost('')))
  await mcase('dial with a wrong psk', 'dial fails', async () => dialOutcome(await newHost('b'.repeat(64))))
  const insider = await newHost(psk)
  await insider.dial(multiaddr(nodeAddr), { signal: AbortSignal.timeout(20_000) })
  const target = peerIdFromString(nodePeerId)
  const refusedHandoff = async (body) => {
    const answer = await meshRequest(insider, target, '/binge/handoff/1.0.0', body, 20_000)
    const ok = answer?.status === 'refused' && /not a mesh member/.test(answer.reason ?? '')
    return {
      status: answer?.status ?? JSON.stringify(answer).slice(0, 40),
      ok,
      note: ok ? 'not a member' : JSON.stringify(answer).slice(0, 80),
    }
  }
  await mcase('psk holder, never announced: handoff overflow', 'refused', (m) => refusedHandoff(handoffBody(m, 'ghost')))
  await mcase('psk holder, never announced: handoff route', 'refused', (m) => refusedHandoff(handoffBody(m, 'ghost', 'route')))
  await mcase("psk holder claims the node's own name", 'refused', (m) => refusedHandoff(handoffBody(m, 'hostile-node')))
  await mcase('psk holder, never announced: trace', 'refused', async () => {
    const answer = await meshRequest(insider, target, '/binge/trace/1.0.0', { id: 'anything' }, 20_000)
    const ok = typeof answer?.refused === 'string' && answer.steps === undefined
    return { status: ok ? 'refused' : JSON.stringify(answer).slice(0, 40), ok }
  })
  await mcase('psk holder: its ghost events have no trace', 'GET 404 each', async () => {
    const found = []
    for (const id of ghostIds) found.push((await http('GET', `/events/${id}`)).status)
    return { status: `GET ${[...new Set(found)].join(',')}`, ok: found.length === 3 && found.every((s) => s === 404) }
  })
  const peers = (await stats())?.peers ?? []
  await mcase('no stranger in /stats peers', 'peers 0', async () => ({ status: `peers ${peers.length}`, ok: peers.length === 0 }))
  await memberCases(target)
}

/**
 * A key holder that announces itself (signed gossip) is a member: its handoffs are taken,
 * but each event must pass the checks of an HTTP POST (README "The mesh", design §5).
 */
async function memberCases(target) {
  const member = await newHost(psk)
  const memberId = member.peerId.toString()
  const pubsub = member.services.pubsub
  pubsub.subscribe(loadTopic)
  await member.dial(multiaddr(nodeAddr), { signal: AbortSignal.timeout(20_000) })
  const announce = () =>
    void pubsub
      .publish(
        loadTopic,
        new TextEncoder().encode(
          JSON.stringify({
            v: 1,
            node: 'member-m',
            peerId: memberId,
            http: '127.0.0.1:1',
            addrs: member.getMultiaddrs().map(String),
            depth: 0,
            inflight: 0,
            highWaterMark: 10,
            lowWaterMark: 5,
            maxEvents: 10,
            accepting: false,
            drainRate: 0,
            pipelines: [],
            sentAt: Date.now(),
          }),
        ),
      )
      .catch(() => undefined)
  const timer = setInterval(announce, 250)
  try {
    await waitFor(
      "the member's announcement in /stats peers",
      async () => ((await stats())?.peers ?? []).some((p) => p.node === 'member-m'),
      30_000,
    )
    let handedIn = (await stats()).counters.handedIn
    const send = async (m, data, { from = 'member-m', accept = false } = {}) => {
      const answer = await meshRequest(
        member,
        target,
        '/binge/handoff/1.0.0',
        {
          v: 1,
          handoffId: `member-${m}`,
          kind: 'overflow',
          from,
          events: [{ id: `member-${m}`, origin: from, receivedAt: Date.now(), hops: 0, data }],
        },
        20_000,
      )
      const s = await stats()
      const inDelta = s.counters.handedIn - handedIn
      handedIn = s.counters.handedIn
      const ok = accept ? answer?.status === 'accepted' && inDelta === 1 : answer?.status === 'refused' && inDelta === 0
      return {
        status: answer?.status ?? 'no answer',
        ok,
        note: `handedIn +${inDelta}${answer?.reason ? `: ${answer.reason.slice(0, 60)}` : ''}`,
        accepted: accept ? 1 : 0,
      }
    }
    const memberCase = async (name, expected, run) => {
      const m = mark()
      let r
      try {
        r = await run(m)
      } catch (err) {
        r = { status: `THREW ${err.message.slice(0, 60)}`, ok: false, accepted: 0 }
      }
      const after = (await stats())?.counters?.received
      const delta = after - received
      received = after
      if (r.accepted) acceptedMarkers.push(m)
      else refusedMarkers.push(m)
      results.push({ id: m, name, expected, actual: r.status, delta, note: r.note ?? '', ok: r.ok, accepted: r.accepted })
    }
    // JSON.parse makes "__proto__" an own key, as in an HTTP body; written raw so it survives.
    const proto = (m) => JSON.parse(`{"case":"${m}","__proto__":{"polluted":true}}`)
    await memberCase('member: handoff, data.__proto__ (top level)', 'refused', (m) => send(m, proto(m)))
    await memberCase('member: handoff, data.a.__proto__', 'refused', (m) => send(m, { case: m, a: proto(m) }))
    await memberCase('member: handoff, data.constructor', 'refused', (m) => send(m, { case: m, constructor: { prototype: {} } }))
    await memberCase('member: handoff, nesting 65 deep', 'refused', (m) =>
      send(m, JSON.parse(`${'{"a":'.repeat(64)}{"case":"${m}"}${'}'.repeat(64)}`)),
    )
    await memberCase('member: handoff, from another node', 'refused', (m) => send(m, { case: m }, { from: 'hostile-node' }))
    await memberCase('member: valid handoff (accepted)', 'accepted', (m) => send(m, { case: m }, { accept: true }))
  } finally {
    clearInterval(timer)
  }
}

// ---------------------------------------------------------------- valid events, end checks
async function validCases() {
  const post = (body, opts = {}) => http('POST', opts.path ?? '/events', { body, ...opts })
  const accepted = (n) => Object.assign((r) => r.status === 202 && json(r)?.ids?.length === n, { label: `202 ${n} id${n > 1 ? 's' : ''}` })
  await hcase('valid: one object', accepted(1), (m) => post(`{"case":"${m}"}`), { accepted: 1 })
  await hcase('valid: array of 2', accepted(2), (m) => post(`[{"case":"${m}"},{"case":"${m}"}]`), { accepted: 2 })
  await hcase('valid: NDJSON of 2', accepted(2), (m) => post(`{"case":"${m}"}\n{"case":"${m}"}\n`, { type: 'application/x-ndjson' }), {
    accepted: 2,
  })
  await hcase(
    'valid: nesting 64 deep, /events/all',
    accepted(1),
    (m) => post(`${'{"a":'.repeat(63)}{"case":"${m}"}${'}'.repeat(63)}`, { path: '/events/all' }),
    { accepted: 1 },
  )
  await hcase('valid: no Content-Type', accepted(1), (m) => post(`{"case":"${m}","big":1e300}`, { type: null }), { accepted: 1 })
}

function outputMarkers() {
  const counts = new Map()
  if (!existsSync(outFile)) return counts
  for (const line of readFileSync(outFile, 'utf8').split('\n')) {
    if (!line) continue
    const found = line.match(/"case":"(h\d{3})"/)
    if (found) counts.set(found[1], (counts.get(found[1]) ?? 0) + 1)
  }
  return counts
}

let fatal
let written = 0
try {
  const listening = await waitFor('the node to listen', () => logLines.find((l) => typeof l.http === 'string'), 60_000)
  port = Number(listening.http.split(':').pop())
  await waitFor('/readyz 200', async () => (await http('GET', '/readyz', { auth: false })).status === 200, 60_000)
  const joined = await waitFor('the mesh to start', () => logLines.find((l) => Array.isArray(l.addrs) && l.peerId), 30_000)
  nodePeerId = joined.peerId
  nodeAddr = `${joined.addrs.find((a) => a.startsWith('/ip4/127.0.0.1/')).replace(/\/p2p\/.*$/, '')}/p2p/${nodePeerId}`
  received = (await stats()).counters.received
  console.log(`hostile: node pid ${child.pid} http 127.0.0.1:${port} mesh ${nodeAddr}`)

  await httpCases()
  await meshCases()
  await validCases()

  // Every accepted event reaches the file; no refused one does.
  try {
    await waitFor('the accepted events in the output file', () => acceptedMarkers.every((m) => outputMarkers().has(m)), 30_000)
  } catch (err) {
    console.error(`hostile: ${err.message}`)
  }
  const counts = outputMarkers()
  for (const r of results) {
    const lines = counts.get(r.id) ?? 0
    r.written = lines
    if (r.accepted && lines !== r.accepted) r.ok = false
    if (!r.accepted && lines > 0) {
      r.ok = false
      written += lines
    }
  }
  const health = await http('GET', '/healthz', { auth: false })
  results.push({
    id: mark(),
    name: 'node alive, GET /healthz',
    expected: '200',
    actual: String(health.status),
    delta: 0,
    note: exited ? `exited ${JSON.stringify(exited)}` : `pid ${child.pid}`,
    ok: health.status === 200 && !exited,
    written: 0,
  })
} catch (err) {
  fatal = err
}
for (const h of hosts) await h.stop().catch(() => undefined)
const crashed = exited && !stopping ? 1 : 0
// A refused request is a warning at most: no error or fatal line in the node's log.
const bad = logLines.filter((l) => typeof l.level === 'number' && l.level >= 50)
results.push({
  id: mark(),
  name: 'node log: no error/fatal lines',
  expected: '0',
  actual: String(bad.length),
  delta: 0,
  note: `${logLines.filter((l) => l.level === 40).length} warnings${bad[0] ? `; first: ${String(bad[0].msg).slice(0, 60)}` : ''}`,
  ok: bad.length === 0,
  written: 0,
})
if (process.env.BINGE_HOSTILE_LOG === '1') for (const l of logLines) if (l.level >= 40) console.log(JSON.stringify(l).slice(0, 300))
const stop = await stopNode()
results.push({
  id: mark(),
  name: 'SIGTERM: clean stop',
  expected: 'exit 0',
  actual: crashed ? 'crashed earlier' : `exit ${stop.code ?? stop.signal}`,
  delta: 0,
  note: '',
  ok: !crashed && stop.code === 0,
  written: 0,
})

// ---------------------------------------------------------------- an open mesh without a key
async function runCli(args, timeoutMs) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [cli, ...args], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (out += d))
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs)
    p.once('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code: code ?? signal, out })
    })
  })
}
const openYaml = nodeYaml
  .replace(`psk: ${psk}`, '')
  .replace('/ip4/127.0.0.1/tcp/0', '/ip4/0.0.0.0/tcp/0')
  .replace(join(tmp, 'data'), join(tmp, 'data-open'))
writeFileSync(join(tmp, 'open.yaml'), openYaml)
for (const cmd of ['validate', 'start']) {
  const r = await runCli([cmd, '--config', join(tmp, 'open.yaml')], 30_000)
  const names = /mesh\.psk/.test(r.out)
  results.push({
    id: mark(),
    name: `open mesh, no psk: binge ${cmd}`,
    expected: 'exit 2, names mesh.psk',
    actual: `exit ${r.code}${names ? ', names mesh.psk' : ''}`,
    delta: 0,
    note: '',
    ok: r.code === 2 && names,
    written: 0,
  })
}

// ---------------------------------------------------------------- the table
const w = { id: 4, name: 44, expected: 24, actual: 26 }
const cell = (s, n) => String(s).slice(0, n).padEnd(n)
console.log(`${cell('#', w.id)} ${cell('case', w.name)} ${cell('expected', w.expected)} ${cell('actual', w.actual)} dRecv out ok  note`)
for (const r of results) {
  console.log(
    `${cell(r.id.replace(/^h0*/, ''), w.id)} ${cell(r.name, w.name)} ${cell(r.expected, w.expected)} ${cell(r.actual, w.actual)} ${cell(Number.isNaN(r.delta) ? '?' : r.delta, 4)} ${cell(r.written ?? '-', 3)} ${r.ok ? 'yes' : 'NO '} ${r.note ?? ''}`,
  )
}
if (fatal) console.error(`hostile: aborted: ${fatal.stack ?? fatal}`)
const asExpected = results.filter((r) => r.ok).length
console.log(
  `hostile: ${results.length} cases, ${asExpected} as expected, ${crashed} crashes, ${written} events written by refused requests`,
)
if (process.env.BINGE_KEEP_TMP !== '1') rmSync(tmp, { recursive: true, force: true })
else console.log(`hostile: kept ${tmp}`)
process.exit(fatal || asExpected !== results.length || crashed || written > 0 ? 1 : 0)

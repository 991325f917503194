// The dashboard's server side (docs/design.md §8), in memory: the page is what the
// sources build (page.generated.ts is not stale), self-contained and under a CSP that
// allows exactly its script; GET /dashboard/node.json gives per-pipeline and per-step
// figures with filtered apart from failed, and stays open when http.authToken guards
// event data; the mesh view joins peers' answers, keeps a silent peer as unreachable
// with its gossiped load, and takes each link's rate from the sender. The browser test
// (dashboard-browser.test.ts) shows the same against real nodes.
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fetchPeerView, meshDashboard } from '../../src/http/dashboard/mesh-view.js'
import type { NodeDashboard } from '../../src/http/dashboard/types.js'
import type { PeerView } from '../../src/mesh/peer-table.js'
import { Metrics } from '../../src/metrics.js'
import { RateWindow } from '../../src/util/rate-window.js'
import { RecentSamples } from '../../src/util/recent-samples.js'
// @ts-expect-error: a plain .mjs script without types
import { generatedPath, renderDashboardModule } from '../../scripts/bundle-dashboard.mjs'
import { repoRoot } from '../support/node-process.js'
import { startTempNode, waitFor, type TempNode } from '../support/temp-node.js'

const json = { 'content-type': 'application/json' }

describe('the dashboard page', () => {
  let t: TempNode
  beforeAll(async () => {
    t = await startTempNode(
      `
pipelines:
  readings:
    steps:
      - filter: 'keep'
      - map: 'bad ? $error("bad reading") : $'
    outputs: [ { file: { path: $DIR/out.jsonl } } ]
    onFail: { then: deadletter }
  idle:
    when: 'false'
    outputs: [ { stdout: {} } ]
`,
      { http: 'authToken: sekrit' },
    )
  })
  afterAll(() => t.close())

  it('is what the sources build: page.generated.ts is not stale (npm run build regenerates it)', async () => {
    expect(readFileSync(generatedPath as string, 'utf8')).toBe(await (renderDashboardModule as () => Promise<string>)())
  })

  it('is carried by the bundle dist/binge.mjs as well (npm run build first)', async () => {
    const bundle = path.join(repoRoot, 'dist', 'binge.mjs')
    if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run npm run build first`)
    const { dashboardCsp } = await import('../../src/http/dashboard/page.generated.js')
    const scriptHash = /script-src ('sha256-[^']+')/.exec(dashboardCsp)?.[1]
    expect(scriptHash).toBeDefined()
    expect(readFileSync(bundle, 'utf8')).toContain(scriptHash)
  })

  it('is served at GET / as one self-contained HTML page under a CSP that allows its own script only', async () => {
    const res = await t.node.app.request('/')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/html/)
    const html = await res.text()
    expect(html.length).toBeLessThan(64 * 1024)
    expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//)
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)?.[1] ?? ''
    expect(script.length).toBeGreaterThan(1000)
    const hash = createHash('sha256').update(script, 'utf8').digest('base64')
    const csp = res.headers.get('content-security-policy') ?? ''
    expect(csp).toContain(`script-src 'sha256-${hash}'`)
    expect(csp).toContain("default-src 'none'")
    expect(csp).toContain("connect-src 'self'")
  })

  it('gives per-pipeline and per-step figures, filtered apart from failed and dead-lettered, open without the token', async () => {
    const events = [{ keep: true }, { keep: false }, { keep: true, bad: true }, { keep: true }]
    const posted = await t.node.app.request('/events', {
      method: 'POST',
      body: JSON.stringify(events),
      headers: { ...json, authorization: 'Bearer sekrit' },
    })
    expect(posted.status).toBe(202)
    await waitFor(() => t.node.stats().counters.deadlettered === 1 && t.node.stats().counters.processed === 2, {
      what: 'the events to finish',
    })
    const res = await t.node.app.request('/dashboard/node.json')
    expect(res.status).toBe(200)
    const view = (await res.json()) as NodeDashboard
    expect(view).toMatchObject({ v: 1, node: 'test-node', phase: 'ready', authRequired: true, accepting: true })
    expect(view.queue).toMatchObject({ highWaterMark: expect.any(Number), lowWaterMark: expect.any(Number), maxEvents: expect.any(Number) })
    const readings = view.pipelines.find((p) => p.name === 'readings')!
    expect(readings).toMatchObject({ in: 4, out: 2, filtered: 1, failed: 1, deadlettered: 1 })
    expect(readings.p95Ms).toBeGreaterThan(0)
    expect(readings.steps).toMatchObject([
      { index: 0, kind: 'filter', in: 4, out: 3, filtered: 1, failed: 0, deadlettered: 0 },
      { index: 1, kind: 'map', in: 3, out: 2, filtered: 0, failed: 1, deadlettered: 1 },
    ])
    // A pipeline no event entered is listed too.
    expect(view.pipelines.find((p) => p.name === 'idle')).toMatchObject({ in: 0, out: 0, steps: [] })
    expect(view.rates.in).toBeGreaterThanOrEqual(0)
    // Event data keeps its token.
    expect((await t.node.app.request('/deadletter')).status).toBe(401)
    const mesh = await (await t.node.app.request('/dashboard/mesh.json')).json()
    expect(mesh).toMatchObject({ v: 1, self: 'test-node', authRequired: true, links: [] })
    expect(mesh.nodes).toHaveLength(1)
    expect(mesh.nodes[0]).toMatchObject({ node: 'test-node', self: true, state: 'ready', source: 'self' })
  })

  it('leaves the JSON API as it was: /stats has its fields, /metrics its text', async () => {
    const stats = await (await t.node.app.request('/stats')).json()
    expect(Object.keys(stats)).toEqual(expect.arrayContaining(['node', 'phase', 'queue', 'counters', 'peers', 'uptimeSeconds']))
    expect((await t.node.app.request('/metrics')).status).toBe(200)
  })
})

function peer(node: string, connected: boolean, load: Partial<PeerView['load']> = {}): PeerView {
  return {
    node,
    peerId: `id-${node}`,
    http: `http://${node}.test:80`,
    load: { depth: 0, inflight: 0, highWaterMark: 100, lowWaterMark: 50, maxEvents: 1000, accepting: true, drainRate: 0, ...load },
    pipelines: ['p'],
    ageMs: 300,
    connected,
    conflict: false,
    credit: 0,
  }
}

function view(node: string, peers: PeerView[], handoffs: NodeDashboard['handoffs'] = []): NodeDashboard {
  return {
    v: 1,
    node,
    phase: 'ready',
    at: 0,
    uptimeSeconds: 1,
    queue: {
      mode: 'durable',
      unprocessed: 10,
      inflight: 0,
      handingOff: 0,
      deadletter: 0,
      bytes: 0,
      highWaterMark: 100,
      lowWaterMark: 50,
      maxEvents: 1000,
    },
    accepting: true,
    counters: {
      received: 0,
      duplicates: 0,
      processed: 0,
      filtered: 0,
      failed: 0,
      deadlettered: 0,
      dropped: 0,
      handedOff: 0,
      handedIn: 0,
      takenBack: 0,
      rejected: 0,
    },
    peers,
    authRequired: false,
    rates: { in: 0, finished: 0, handedOff: 0, handedIn: 0 },
    handoffs,
    pipelines: [],
  }
}

describe('the mesh view', () => {
  it('joins the peers that answer, keeps a silent one as unreachable with its gossip, and rates each link from its sender', async () => {
    const a = view(
      'a',
      [peer('b', true), peer('c', false, { depth: 77, drainRate: 3 })],
      [{ peer: 'b', out: 12.5, in: 0, outTotal: 750, inTotal: 0 }],
    )
    // b answers; it also knows d, which a does not, and saw 2/s come in from a (a's own count wins).
    const b = view('b', [peer('a', true), peer('d', true)], [{ peer: 'a', out: 0.5, in: 2, outTotal: 30, inTotal: 120 }])
    const asked: string[] = []
    const mesh = await meshDashboard(a, async (url) => {
      asked.push(url)
      if (url.includes('b.test')) return b
      throw new Error('connect ECONNREFUSED')
    })
    expect(asked.sort()).toEqual(['http://b.test:80', 'http://c.test:80'])
    const cards = Object.fromEntries(mesh.nodes.map((n) => [n.node, n]))
    expect(Object.keys(cards).sort()).toEqual(['a', 'b', 'c', 'd'])
    expect(cards.a).toMatchObject({ self: true, source: 'self', state: 'ready' })
    expect(cards.b).toMatchObject({ source: 'http', state: 'ready', http: 'http://b.test:80' })
    expect(cards.c).toMatchObject({
      source: 'gossip',
      state: 'unreachable',
      problem: 'its HTTP API could not be read',
      drainRate: 3,
    })
    expect(cards.c!.queue.unprocessed).toBe(77)
    expect(cards.d).toMatchObject({ source: 'gossip', state: 'ready' })
    expect(cards.d!.problem).toContain('known through b')
    const links = Object.fromEntries(mesh.links.map((l) => [`${l.a}-${l.b}`, l]))
    expect(links['a-b']).toEqual({ a: 'a', b: 'b', aToB: 12.5, bToA: 0.5 })
    expect(links['b-d']).toEqual({ a: 'b', b: 'd', aToB: 0, bToA: 0 })
    expect(links['a-c']).toBeUndefined()
  })

  it('takes a malformed answer for no answer: the peer keeps its gossiped card', async () => {
    const a = view('a', [peer('b', true, { depth: 5 })])
    const answer = { ...view('b', []), pipelines: [null], extra: '<script>' }
    const mesh = await meshDashboard(a, async () => answer)
    const b = mesh.nodes.find((n) => n.node === 'b')!
    expect(b).toMatchObject({ source: 'gossip', state: 'ready' })
    expect(b.problem).toMatch(/^its figures are malformed \(pipelines\.0: /)
    expect(b.queue.unprocessed).toBe(5)
    expect(JSON.stringify(mesh)).not.toContain('<script>')
  })

  it('refuses a peer that answers as another node', async () => {
    const a = view('a', [peer('b', true)])
    const mesh = await meshDashboard(a, async () => view('mallory', []))
    const b = mesh.nodes.find((n) => n.node === 'b')!
    expect(b).toMatchObject({ source: 'gossip' })
    expect(b.problem).toContain('answered as node "mallory"')
  })
})

describe("reading a peer's figures over HTTP", () => {
  it('gives a reason, never the body, for an error status, a body over 2 MiB, a silent peer, or not JSON', async () => {
    const server = http.createServer((req, res) => {
      if (req.url === '/big/dashboard/node.json') {
        // Chunked, no content-length: the reader must stop by itself.
        res.writeHead(200, { 'content-type': 'application/json' })
        const chunk = 'x'.repeat(64 * 1024)
        let sent = 0
        const more = () => {
          while (sent < 4 * 1024 * 1024 && res.write(chunk)) sent += chunk.length
          if (sent >= 4 * 1024 * 1024) res.end()
        }
        res.on('drain', () => {
          sent += chunk.length
          more()
        })
        res.on('error', () => undefined)
        more()
      } else if (req.url === '/silent/dashboard/node.json') {
        // Never answers.
      } else if (req.url === '/text/dashboard/node.json') res.end('<html>')
      else res.writeHead(500).end('secret stack trace')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const reason = (p: Promise<unknown>) =>
      p.then(
        () => 'resolved',
        (err: Error) => err.message,
      )
    try {
      expect(await reason(fetchPeerView(`${base}/big`))).toBe('its answer was too large')
      expect(await reason(fetchPeerView(`${base}/broken`))).toBe('its HTTP API answered 500')
      expect(await reason(fetchPeerView(`${base}/text`))).toBe('its answer was not JSON')
      expect(await reason(fetchPeerView(`${base}/silent`))).toMatch(/did not answer within \d+ ms/)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
    // A port nothing listens on (any more).
    const closed = http.createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise((resolve) => closed.close(resolve))
    expect(await reason(fetchPeerView(`http://127.0.0.1:${port}`))).toBe('its HTTP API is unreachable (ECONNREFUSED)')
  })
})

describe('rates and percentiles', () => {
  it('RateWindow counts whole past seconds over the span asked', () => {
    let now = 1_000_000
    const w = new RateWindow(() => now)
    w.add(30)
    now += 1_000
    w.add(10)
    // The current second is not counted yet.
    expect(w.rate(10)).toBe(3)
    now += 1_000
    expect(w.rate(10)).toBe(4)
    expect(w.rate(1)).toBe(10)
    now += 60_000
    expect(w.rate(60)).toBe(0)
    expect(w.total).toBe(40)
  })

  it('Metrics counts handoffs per peer each way, for the links', () => {
    const metrics = new Metrics('a', () => ({ unprocessed: 0, inflight: 0, handingOff: 0, deadletter: 0, bytes: 0 }), {
      defaultMetrics: false,
    })
    metrics.handoff('out', 60, 'b')
    metrics.handoff('out', 4, 'b')
    metrics.handoff('in', 7, 'c')
    metrics.handoff('takenBack', 3)
    // The rates count whole past seconds, so only the totals are certain here.
    expect(metrics.figures().handoffs).toMatchObject([
      { peer: 'b', outTotal: 64, inTotal: 0 },
      { peer: 'c', outTotal: 0, inTotal: 7 },
    ])
    expect(metrics.counters).toMatchObject({ handedOff: 64, handedIn: 7, takenBack: 3 })
  })

  it('RecentSamples gives the p95 of the last values only', () => {
    const r = new RecentSamples(100)
    expect(r.quantile(0.95)).toBeUndefined()
    for (let i = 1; i <= 100; i++) r.add(i)
    expect(r.quantile(0.95)).toBe(95)
    for (let i = 0; i < 100; i++) r.add(1)
    expect(r.quantile(0.95)).toBe(1)
  })
})

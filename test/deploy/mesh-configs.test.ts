// The example configs in mesh-configs/ are the first thing a newcomer runs, so each is
// checked as a user meets it: it validates with its local defaults and with the
// environment docker-compose.yml gives it; the three examples the issue promises are
// there (IoT window + alert, SaaS filter/transform + dead letter, a relay); and the
// pipelines do what their comments say, run on a real node (LevelDB on a temp dir, real
// HTTP) against the example webhook receiver.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { silentLogger } from '../../src/log.js'
import { BingeNode } from '../../src/node.js'
import { cleanEnv, loadExample, meshConfigFiles, nodeServices, readCompose, serviceEnv, windowRegistered } from './deploy-support.js'
import { startReceiver } from '../../scripts/webhook-receiver.mjs'

interface Received {
  path: string
  body: { node: string; pipeline: string; origin: string; data: Record<string, unknown> } & Record<string, unknown>
}
interface Receiver {
  url: string
  close(): Promise<void>
}

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const files = meshConfigFiles()
type Raw = {
  pipelines?: Record<
    string,
    { steps?: Array<Record<string, unknown>>; outputs?: Array<Record<string, unknown>>; onFail?: { then?: unknown } }
  >
  mesh?: { bootstrap?: string[] }
}
const raw = (name: string): Raw => parse(fs.readFileSync(files.get(name)!, 'utf8')) as Raw

async function receiver(failing: Set<string> = new Set()): Promise<Receiver & { received: () => Promise<Received[]> }> {
  const r = (await startReceiver({ listen: '127.0.0.1:0', print: () => {}, fail: (p: string) => failing.has(p) })) as Receiver
  cleanups.push(() => r.close())
  return { ...r, received: async () => ((await (await fetch(r.url)).json()) as { last: Received[] }).last }
}

/** The example as a standalone node (no mesh section) on a temp dir and a free port. */
async function runExample(name: string, webhookUrl: string): Promise<{ url: string; out: string; node: BingeNode }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `binge-example-${name}-`))
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
  const out = path.join(dir, 'out')
  const { config } = loadExample(
    files.get(name)!,
    cleanEnv({ BINGE_DATA_DIR: path.join(dir, 'data'), BINGE_OUT_DIR: out, BINGE_WEBHOOK_URL: webhookUrl }),
  )
  config.http.listen = '127.0.0.1:0'
  delete (config as { mesh?: unknown }).mesh
  const node = new BingeNode(config, { log: silentLogger, processMetrics: false })
  const address = await node.start()
  cleanups.push(() => node.stop())
  return { url: `http://127.0.0.1:${address.port}`, out, node }
}

async function post(url: string, body: unknown): Promise<number> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  await res.text()
  return res.status
}

async function until<T>(probe: () => Promise<T | undefined | false>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe('mesh-configs/', () => {
  it('every config validates with its local defaults and with the environment docker-compose.yml gives it', () => {
    expect([...files.keys()]).toEqual(['node-a', 'node-b', 'node-c'])
    const services = new Map(nodeServices(readCompose()))
    const notes = new Set<string>()
    for (const [name, file] of files) {
      const local = loadExample(file, cleanEnv())
      if (local.tolerated) notes.add(local.tolerated)
      expect(local.config.node.id).toBe(name)
      expect(local.config.node.dataDir).toBe(path.resolve('data', name))
      const service = services.get(name)
      expect(service, `a compose service for ${name}`).toBeDefined()
      const inCompose = loadExample(file, cleanEnv(serviceEnv(service!)))
      expect(inCompose.config.node.dataDir).toBe('/data')
      expect(inCompose.config.http.listen).toBe('0.0.0.0:8080')
    }
    // Said out loud so a green run does not hide it; gone once `window` is registered.
    for (const note of notes) console.warn(`tolerated: ${note}`)
    if (windowRegistered()) expect(notes.size).toBe(0)
  })

  it('holds an IoT pipeline with a window aggregate and an alert webhook', () => {
    const pipelines = Object.values(raw('node-a').pipelines ?? {})
    const windowed = pipelines.find((p) => p.steps?.some((s) => 'window' in s))
    expect(windowed, 'a pipeline with a window step').toBeDefined()
    const window = windowed!.steps!.find((s) => 'window' in s)!.window as Record<string, unknown>
    expect(Object.keys(window).sort()).toEqual(['aggregate', 'every', 'key', 'size'])
    expect(windowed!.onFail?.then).toEqual({ alert: { webhook: expect.stringMatching(/\/alerts$/) } })
    expect(windowed!.outputs?.some((o) => 'http' in o)).toBe(true)
  })

  it('holds a SaaS-webhook filter/transform pipeline that dead-letters, and a relay with no pipeline of its own', () => {
    const saas = Object.values(raw('node-b').pipelines ?? {})
    const pr = saas.find((p) => p.steps?.some((s) => 'filter' in s) && p.steps.some((s) => 'map' in s))
    expect(pr, 'a pipeline with filter and map').toBeDefined()
    expect(pr!.onFail?.then).toBe('deadletter')
    expect(pr!.outputs?.some((o) => 'http' in o)).toBe(true)
    const relay = raw('node-c')
    expect(relay.pipelines ?? {}).toEqual({})
    expect(relay.mesh?.bootstrap?.length).toBe(1)
  })

  it('IoT: keeps every reading in a file, sends hot ones upstream at once, and alerts when upstream is down', async () => {
    const failing = new Set<string>()
    const hook = await receiver(failing)
    const { url, out } = await runExample('node-a', hook.url)
    const readings = [
      { type: 'temperature', sensor: 't-1', room: 'lab', celsius: 21.5 },
      { type: 'temperature', sensor: 't-2', room: 'server-room', celsius: 45 },
      { type: 'temperature', sensor: 't-3', room: 'boiler', celsius: 65 },
    ]
    expect(await post(`${url}/events`, [...readings, { type: 'humidity', sensor: 'h-1', percent: 40 }])).toBe(202)
    const file = path.join(out, 'node-a', 'temperature.jsonl')
    const kept = await until(async () => {
      const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : []
      return lines.length >= 3 && lines.map((l) => (JSON.parse(l) as { data: unknown }).data)
    }, 'the raw readings in the file')
    expect(kept).toEqual(readings)
    const hot = await until(async () => {
      const got = (await hook.received()).filter((r) => r.path === '/iot/overheat')
      return got.length >= 2 && got
    }, 'two overheat notices')
    expect(hot.map((r) => r.body.data).sort((a, b) => String(a.sensor).localeCompare(String(b.sensor)))).toEqual([
      { sensor: 't-2', room: 'server-room', celsius: 45, fahrenheit: 113, severity: 'warning' },
      { sensor: 't-3', room: 'boiler', celsius: 65, fahrenheit: 149, severity: 'critical' },
    ])
    // Upstream down: after its retries the overheat pipeline calls the alert webhook.
    failing.add('/iot/overheat')
    expect(await post(`${url}/events`, { type: 'temperature', sensor: 't-9', room: 'attic', celsius: 51 })).toBe(202)
    const alert = await until(async () => (await hook.received()).find((r) => r.path === '/alerts'), 'an alert', 30_000)
    expect(JSON.stringify(alert.body)).toContain('t-9')
  })

  it('SaaS: notices for opened and merged pull requests and failed payments; the rest filtered; dead letters replayable', async () => {
    const failing = new Set<string>()
    const hook = await receiver(failing)
    const { url } = await runExample('node-b', hook.url)
    const pr = (action: string, number: number, merged = false) => ({
      action,
      number,
      pull_request: { title: `PR ${number}`, merged, html_url: `https://github.com/acme/edge/pull/${number}`, user: { login: 'ada' } },
      repository: { full_name: 'acme/edge' },
    })
    const payment = (type: string) => ({
      object: 'event',
      type,
      data: {
        object: { id: 'in_1', customer: 'cus_1', customer_email: 'ops@acme.test', amount_due: 4900, currency: 'eur', attempt_count: 2 },
      },
    })
    const sent = [
      pr('opened', 1),
      pr('closed', 2, true),
      pr('closed', 3, false),
      pr('labeled', 4),
      payment('invoice.payment_failed'),
      payment('invoice.paid'),
    ]
    for (const body of sent) expect(await post(`${url}/events`, body)).toBe(202)
    const notices = await until(async () => {
      const got = (await hook.received()).filter((r) => r.path === '/saas/notices')
      return got.length >= 3 && got
    }, 'three notices')
    const data = notices.map((r) => r.body.data)
    expect(data).toEqual(
      expect.arrayContaining([
        {
          source: 'github',
          repo: 'acme/edge',
          number: 1,
          title: 'PR 1',
          author: 'ada',
          event: 'opened',
          url: 'https://github.com/acme/edge/pull/1',
        },
        {
          source: 'github',
          repo: 'acme/edge',
          number: 2,
          title: 'PR 2',
          author: 'ada',
          event: 'merged',
          url: 'https://github.com/acme/edge/pull/2',
        },
        { source: 'stripe', customer: 'ops@acme.test', amount: 49, currency: 'EUR', attempt: 2, invoice: 'in_1' },
      ]),
    )
    expect(data).toHaveLength(3)

    // The hook is down: after the retries the event is a dead letter, kept and listable ...
    failing.add('/saas/notices')
    expect(await post(`${url}/events`, pr('opened', 5))).toBe(202)
    const dead = await until(
      async () => {
        const body = (await (await fetch(`${url}/deadletter`)).json()) as { count: number; events: Array<{ error: string }> }
        return body.count === 1 && body
      },
      'a dead letter',
      30_000,
    )
    expect(dead.events[0]!.error).toMatch(/503/)
    // ... and replayed once the hook is back.
    failing.clear()
    expect(
      (await fetch(`${url}/deadletter/replay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status,
    ).toBe(200)
    await until(async () => (await hook.received()).some((r) => r.body.data?.number === 5), 'the replayed notice')
  })
})

// The http output on its own, against a local server: batching across concurrent
// writes by count, by time and by what is in flight (a write resolves only with the
// POSTs holding its records), which answers are permanent failures and which are worth
// a retry, timeouts, a write given up by its caller, and a POST no write waits for.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createHttpOutput, OutputFailure } from '../../src/pipeline/outputs/http.js'

interface Answer {
  status?: number
  delayMs?: number
}

interface Server {
  url: string
  bodies: unknown[][]
  /** When each POST arrived (ms since the test's start). */
  arrivals: number[]
  close(): Promise<void>
}

const servers: Server[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

async function serve(answer: (n: number, body: unknown[]) => Answer = () => ({})): Promise<Server> {
  const bodies: unknown[][] = []
  const arrivals: number[] = []
  const t0 = performance.now()
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const n = bodies.length
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown[]
      bodies.push(body)
      arrivals.push(performance.now() - t0)
      const { status = 200, delayMs = 0 } = answer(n, body)
      setTimeout(() => {
        if (!res.destroyed) res.writeHead(status).end(status >= 400 ? `nope ${status}` : '')
      }, delayMs)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const s: Server = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    bodies,
    arrivals,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  servers.push(s)
  return s
}

async function failureOf(p: Promise<unknown>): Promise<OutputFailure> {
  try {
    await p
  } catch (err) {
    expect(err).toBeInstanceOf(OutputFailure)
    return err as OutputFailure
  }
  throw new Error('expected the write to fail')
}

describe('http output batching', () => {
  it('sends at once to an idle endpoint, writes made together in one POST', async () => {
    const s = await serve()
    const out = createHttpOutput({ url: s.url, timeoutMs: 5_000, batchCount: 100, batchPeriodMs: 60_000 })
    const started = performance.now()
    await Promise.all([out.write([{ w: 1 }]), out.write([{ w: 2 }, { w: 3 }]), out.write([{ w: 4 }])])
    await out.write([{ w: 5 }])
    expect(performance.now() - started).toBeLessThan(5_000)
    expect(s.bodies).toEqual([[{ w: 1 }, { w: 2 }, { w: 3 }, { w: 4 }], [{ w: 5 }]])
    await out.stop?.()
  })

  it('while a POST is in flight, gathers the writes that come and sends them together when it answers', async () => {
    const s = await serve((n) => ({ delayMs: n === 0 ? 300 : 0 }))
    const out = createHttpOutput({ url: s.url, timeoutMs: 5_000, batchCount: 100, batchPeriodMs: 60_000 })
    const first = out.write([{ w: 1 }])
    await new Promise((r) => setTimeout(r, 50))
    const later = [out.write([{ w: 2 }]), out.write([{ w: 3 }]), out.write([{ w: 4 }])]
    await new Promise((r) => setTimeout(r, 100))
    expect(s.bodies.length).toBe(1)
    await Promise.all([first, ...later])
    expect(s.bodies).toEqual([[{ w: 1 }], [{ w: 2 }, { w: 3 }, { w: 4 }]])
    await out.stop?.()
  })

  it('while a POST is in flight, sends what waits after batch.period', async () => {
    const s = await serve((n) => ({ delayMs: n === 0 ? 3_000 : 0 }))
    const out = createHttpOutput({ url: s.url, timeoutMs: 5_000, batchCount: 100, batchPeriodMs: 100 })
    const slow = out.write([{ w: 'slow' }])
    await new Promise((r) => setTimeout(r, 20))
    const started = performance.now()
    await out.write([{ w: 1 }])
    const waited = performance.now() - started
    expect(waited).toBeGreaterThanOrEqual(90)
    expect(waited).toBeLessThan(2_500) // well before the slow POST answers
    expect(s.bodies).toEqual([[{ w: 'slow' }], [{ w: 1 }]])
    await slow
    await out.stop?.()
  })

  it('while a POST is in flight, sends as soon as batch.count records wait', async () => {
    const s = await serve((n) => ({ delayMs: n === 0 ? 5_000 : 0 }))
    const out = createHttpOutput({ url: s.url, timeoutMs: 10_000, batchCount: 3, batchPeriodMs: 60_000 })
    const slow = out.write([{ w: 'slow' }])
    await new Promise((r) => setTimeout(r, 20))
    const started = performance.now()
    await Promise.all([out.write([{ w: 2 }]), out.write([{ w: 3 }]), out.write([{ w: 4 }])])
    expect(performance.now() - started).toBeLessThan(4_000) // before the slow POST answers, far before the period
    expect(s.bodies).toEqual([[{ w: 'slow' }], [{ w: 2 }, { w: 3 }, { w: 4 }]])
    await slow
    await out.stop?.()
  })

  it('resolves a write only once every POST holding its records answered', async () => {
    // The first POST is slow: the write split across both POSTs waits for it.
    const s = await serve((n) => ({ delayMs: n === 0 ? 300 : 0 }))
    const out = createHttpOutput({ url: s.url, timeoutMs: 5_000, batchCount: 2, batchPeriodMs: 10 })
    let done = false
    const write = out.write([{ w: 1 }, { w: 2 }, { w: 3 }]).then(() => void (done = true))
    await new Promise((r) => setTimeout(r, 150))
    expect(s.bodies.length).toBe(2)
    expect(done).toBe(false)
    await write
    expect(s.bodies.flat()).toEqual(expect.arrayContaining([{ w: 1 }, { w: 2 }, { w: 3 }]))
    await out.stop?.()
  })

  it('fails every write in a POST that failed, and only those', async () => {
    const s = await serve((n) => ({ status: n === 0 ? 503 : 200 }))
    const out = createHttpOutput({ url: s.url, timeoutMs: 5_000, batchCount: 2, batchPeriodMs: 10 })
    const [first, second] = await Promise.allSettled([out.write([{ w: 1 }]), out.write([{ w: 2 }])])
    expect(first.status === 'rejected' && first.reason).toBeInstanceOf(OutputFailure)
    expect(second.status === 'rejected' && second.reason).toBe(first.status === 'rejected' && first.reason)
    await out.write([{ w: 3 }])
    expect(s.bodies).toEqual([[{ w: 1 }, { w: 2 }], [{ w: 3 }]])
    await out.stop?.()
  })

  it('a retried write skips the records an earlier POST of it delivered before another failed', async () => {
    // A write of three split over two POSTs: the first (w1, w2) is taken, the second (w3) fails.
    let failedOnce = false
    const s = await serve((_, body) => {
      if (failedOnce || !JSON.stringify(body).includes('"w":3')) return {}
      failedOnce = true
      return { status: 503 }
    })
    const out = createHttpOutput({ url: s.url, timeoutMs: 5_000, batchCount: 2, batchPeriodMs: 10 })
    const records = [{ w: 1 }, { w: 2 }, { w: 3 }]
    await failureOf(out.write(records))
    // The caller (the pipeline's retry) writes the same records again: only w3 goes.
    await out.write(records)
    expect(s.bodies).toEqual(expect.arrayContaining([[{ w: 1 }, { w: 2 }], [{ w: 3 }]]))
    expect(s.bodies).toHaveLength(3)
    expect(s.bodies[2]).toEqual([{ w: 3 }])
    // Records of other writes, equal but not the same objects, are sent as usual.
    await out.write([{ w: 1 }])
    expect(s.bodies).toHaveLength(4)
    await out.stop?.()
  })

  it('drops the records of a write its caller gave up on before they were sent', async () => {
    const s = await serve()
    const out = createHttpOutput({ url: s.url, timeoutMs: 5_000, batchCount: 100, batchPeriodMs: 100 })
    const controller = new AbortController()
    const abandoned = out.write([{ w: 'gone' }], { signal: controller.signal })
    const kept = out.write([{ w: 'kept' }])
    controller.abort(new Error('shutting down'))
    const [a, k] = await Promise.allSettled([abandoned, kept])
    expect(a.status === 'rejected' && String(a.reason)).toMatch(/shutting down/)
    expect(k.status).toBe('fulfilled')
    expect(s.bodies).toEqual([[{ w: 'kept' }]])
    await out.stop?.()
  })

  it('aborts a POST once every write in it was given up, not while another still waits for it', async () => {
    // The first POST is held 60 s (the output's timeout): only an abort ends it sooner.
    const s = await serve((n) => ({ delayMs: n === 0 ? 60_000 : 300 }))
    const out = createHttpOutput({ url: s.url, timeoutMs: 60_000, batchCount: 100, batchPeriodMs: 0 })
    const alone = new AbortController()
    const given = out.write([{ w: 'alone' }], { signal: alone.signal })
    await vi.waitFor(() => expect(s.bodies).toHaveLength(1))
    alone.abort(new Error('shutting down'))
    await expect(given).rejects.toThrow(/shutting down/)
    // The held POST was aborted: stopping waits for no send (it would wait 60 s otherwise).
    const t0 = performance.now()
    await out.stop?.()
    expect(performance.now() - t0).toBeLessThan(5_000)

    // Two writes in one POST (held 300 ms): one gives up, the other still gets its answer.
    const shared = createHttpOutput({ url: s.url, timeoutMs: 60_000, batchCount: 100, batchPeriodMs: 0 })
    const leaving = new AbortController()
    const left = shared.write([{ w: 'leaves' }], { signal: leaving.signal })
    const stays = shared.write([{ w: 'stays' }])
    await vi.waitFor(() => expect(s.bodies).toHaveLength(2))
    leaving.abort(new Error('gave up'))
    await expect(left).rejects.toThrow(/gave up/)
    await expect(stays).resolves.toBeUndefined()
    expect(s.bodies[1]).toEqual([{ w: 'leaves' }, { w: 'stays' }])
    await shared.stop?.()
  })

  it('sends what still waits when it stops', async () => {
    const s = await serve()
    const out = createHttpOutput({ url: s.url, timeoutMs: 5_000, batchCount: 100, batchPeriodMs: 60_000 })
    const write = out.write([{ w: 1 }])
    await out.stop?.()
    await write
    expect(s.bodies).toEqual([[{ w: 1 }]])
  })
})

describe('http output failures', () => {
  it.each([
    [400, true],
    [401, true],
    [404, true],
    [413, true],
    [422, true],
    [408, false],
    [429, false],
    [500, false],
    [502, false],
    [503, false],
  ])('an answer %i is permanent: %s', async (status, permanent) => {
    const s = await serve(() => ({ status }))
    const out = createHttpOutput({ url: s.url, timeoutMs: 5_000, batchPeriodMs: 0 })
    const failure = await failureOf(out.write([{ n: 1 }]))
    expect(failure.permanent).toBe(permanent)
    expect(failure.code).toBe('BINGE_OUTPUT_FAILED')
    expect(failure.message).toContain(`answered ${status}: nope ${status}`)
  })

  it('a POST past its timeout is a transient failure that says so', async () => {
    const s = await serve(() => ({ delayMs: 2_000 }))
    const out = createHttpOutput({ url: s.url, timeoutMs: 100, batchPeriodMs: 0 })
    const failure = await failureOf(out.write([{ n: 1 }]))
    expect(failure.permanent).toBe(false)
    expect(failure.message).toBe(`POST ${s.url} failed: timed out after 100 ms`)
  })

  it('a refused connection is a transient failure naming the socket error', async () => {
    const s = await serve()
    await s.close()
    const out = createHttpOutput({ url: s.url, timeoutMs: 2_000, batchPeriodMs: 0 })
    const failure = await failureOf(out.write([{ n: 1 }]))
    expect(failure.permanent).toBe(false)
    expect(failure.message).toMatch(/ECONNREFUSED/)
  })
})

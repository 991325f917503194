// Start-up over a big backlog (docs/design.md §3 and §4): with 100,000 events on disk,
// some of them left in flight by a crashed run, the node answers /readyz 503 and
// refuses POST /events with 503 + Retry-After until its queue has recovered, never
// accepts an event before it says it is ready, and then processes the whole backlog.
// The recovery time is printed, not asserted.

import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { describe, expect, it } from 'vitest'
import { cleanUpNodesAfterEach, printNodeOnFailure } from '../support/hooks.js'
import { DurableQueue } from '../../src/queue/index.js'
import type { EventRecord } from '../../src/queue/types.js'
import { makeTempDir, NodeProcess, postEvents, readOutput, writeConfig, type LogLine } from '../support/node-process.js'

// BINGE_RECOVERY_BACKLOG shrinks it for a quick run; the drain (~1-3k events/s here) is
// what makes this test long, not the recovery.
const BACKLOG = Number(process.env.BINGE_RECOVERY_BACKLOG ?? 100_000)
const LEFT_IN_FLIGHT = 500

const watched = printNodeOnFailure()
cleanUpNodesAfterEach()

/** Fill `<dataDir>/queue` as a node that crashed mid-work would have left it. */
async function writeBacklog(dataDir: string): Promise<void> {
  const queue = new DurableQueue({
    dir: path.join(dataDir, 'queue'), // where src/node.ts keeps it
    sync: 'none', // the close below flushes; nothing here must survive a power cut
    maxEvents: 10 * BACKLOG,
    maxBytes: 2 ** 30,
    dedupeWindowMs: 600_000,
  })
  await queue.open()
  const receivedAt = Date.now()
  for (let start = 0; start < BACKLOG; start += 2000) {
    const events: EventRecord[] = []
    for (let i = start; i < Math.min(start + 2000, BACKLOG); i++) {
      events.push({ id: `backlog-${i}`, origin: 'crashed-run', receivedAt, hops: 0, data: { cid: `backlog-${i}`, n: i } })
    }
    await queue.enqueue(events)
  }
  // Taken by "workers" that then died: left in flight, recovered at the next start.
  const taken = await queue.dequeue(LEFT_IN_FLIGHT)
  expect(taken).toHaveLength(LEFT_IN_FLIGHT)
  expect(queue.depth()).toMatchObject({ unprocessed: BACKLOG - LEFT_IN_FLIGHT, inflight: LEFT_IN_FLIGHT })
  await queue.close()
}

interface Probe {
  sentAt: number
  answeredAt: number
  status: number
  retryAfter?: string | null
  cids?: string[]
}

describe(`recovery of a ${BACKLOG}-event backlog`, () => {
  it('says 503 until the queue has recovered, accepts nothing before, then processes it all', async () => {
    const dir = makeTempDir('binge-recovery-')
    const dataDir = path.join(dir, 'data')
    const outFile = path.join(dir, 'out', 'all.jsonl')
    const prefillStarted = performance.now()
    await writeBacklog(dataDir)
    const prefillMs = performance.now() - prefillStarted

    const configFile = writeConfig(dir, {
      node: { id: 'recovery', dataDir },
      http: { listen: '127.0.0.1:0' },
      // Room for the backlog plus what the test posts (the default cap is 100,000).
      queue: { mode: 'durable', sync: 'batch', maxEvents: 4 * BACKLOG },
      // The drain is fdatasync-bound: the file output's group commit shares one fsync
      // among the workers waiting on it, so 32 workers drain ~3x faster than 4 (dequeue is serialised, so no more than that).
      workers: 32,
      pipelines: { all: { outputs: [{ file: { path: outFile } }] } },
    })
    const node = await NodeProcess.spawn(configFile, { label: 'recovery' })
    watched.node = node
    const url = node.url!

    // From the moment the port is known: poll /readyz and POST as fast as answers come,
    // until /readyz has said 200 and a few POSTs have been accepted after that.
    const readyz: Probe[] = []
    const posts: Probe[] = []
    let readyAt: number | undefined
    let acceptedAfterReady = 0
    let n = 0
    const done = () => readyAt !== undefined && acceptedAfterReady >= 20
    const deadline = Date.now() + 60_000
    const pollReady = async () => {
      while (!done() && Date.now() < deadline) {
        const sentAt = performance.now()
        const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined)
        await res?.body?.cancel()
        const answeredAt = performance.now()
        readyz.push({ sentAt, answeredAt, status: res?.status ?? 0, retryAfter: res?.headers.get('retry-after') })
        if (res?.status === 200 && readyAt === undefined) readyAt = answeredAt
      }
    }
    const post = async (client: number) => {
      while (!done() && Date.now() < deadline) {
        const cids = [`live-${client}-${n++}`]
        const sentAt = performance.now()
        const res = await postEvents(url, { cid: cids[0] }, { timeoutMs: 10_000 })
        const answeredAt = performance.now()
        posts.push({ sentAt, answeredAt, status: res.status, retryAfter: res.retryAfter, cids })
        if (res.status === 202 && readyAt !== undefined) acceptedAfterReady++
      }
    }
    await Promise.all([pollReady(), post(0), post(1)])
    expect(done(), 'the node became ready and accepted POSTs within 60 s').toBe(true)

    const recovered: LogLine = await node.waitForLog((l) => l.msg === 'Queue recovery finished.')
    const readyLine = await node.waitForLog((l) => l.msg === 'The node is ready.')
    const before503 = readyz.filter((p) => p.status === 503)
    const postsRefused = posts.filter((p) => p.status === 503)
    const postsAccepted = posts.filter((p) => p.status === 202)

    // /readyz: 503 while recovering, then 200, never back.
    expect(before503.length, 'the node was seen recovering').toBeGreaterThan(0)
    const firstOk = readyz.findIndex((p) => p.status === 200)
    expect(readyz.slice(0, firstOk).every((p) => p.status === 503)).toBe(true)
    expect(readyz.slice(firstOk).every((p) => p.status === 200)).toBe(true)
    expect(before503.every((p) => p.retryAfter !== null && p.retryAfter !== undefined)).toBe(true)

    // POST: only 503 (with Retry-After) or 202.
    expect(posts.filter((p) => p.status !== 503 && p.status !== 202)).toEqual([])
    expect(postsRefused.length, 'some POSTs arrived while it recovered').toBeGreaterThan(0)
    expect(postsRefused.every((p) => p.retryAfter !== null && p.retryAfter !== undefined && p.retryAfter !== '')).toBe(true)
    // Nothing accepted before ready. A 202 answered before a /readyz was even sent that
    // then said 503 would mean the node accepted an event while it still said "not
    // ready" (its phase only moves forward); and no POST sent after /readyz said 200
    // may be refused as "recovering".
    const lastNotReadySent = Math.max(...before503.map((p) => p.sentAt))
    expect(postsAccepted.filter((p) => p.answeredAt < lastNotReadySent)).toEqual([])
    expect(postsRefused.filter((p) => p.sentAt > readyAt!)).toEqual([])

    // The recovery report: every backlog event is unprocessed, the ones in flight at the
    // kill included (they never left their unprocessed keys).
    expect(recovered).toMatchObject({ requeued: 0, unprocessed: BACKLOG })
    const recoveryMs = recovered.durationMs as number
    const startToReadyMs = Date.parse(readyLine.time!) - Date.parse(node.logs.find((l) => typeof l.http === 'string')!.time!)

    // Then all of it is processed, exactly once (nothing was written out before).
    const drainStarted = performance.now()
    await node.waitDrained(110_000)
    const drainMs = performance.now() - drainStarted
    const output = readOutput(outFile)
    const missing: string[] = []
    for (let i = 0; i < BACKLOG; i++) if (!output.counts.has(`backlog-${i}`)) missing.push(`backlog-${i}`)
    for (const p of postsAccepted) if (!output.counts.has(p.cids![0]!)) missing.push(p.cids![0]!)
    expect(missing.slice(0, 20)).toEqual([])
    expect(missing).toHaveLength(0)
    expect(output.records.length).toBe(BACKLOG + postsAccepted.length)
    expect(output.counts.size).toBe(BACKLOG + postsAccepted.length)

    console.log(
      `recovery of ${BACKLOG} events (${LEFT_IN_FLIGHT} in flight): durationMs ${recoveryMs.toFixed(0)} (log "Queue recovery finished."), ` +
        `listening->ready ${startToReadyMs} ms; /readyz 503 x${before503.length} then 200; POST 503 x${postsRefused.length}, 202 x${postsAccepted.length}; ` +
        `prefill ${prefillMs.toFixed(0)} ms; drained in ${(drainMs / 1000).toFixed(1)} s (${Math.round(BACKLOG / (drainMs / 1000))} events/s)`,
    )
    expect(await node.kill('SIGTERM')).toEqual({ code: 0, signal: null })
  }, 180_000)
})

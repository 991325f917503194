// Windows across kill -9 (docs/design.md §2: stateful steps commit their state with the
// ack, so a crash neither loses nor double-counts). Clients post 10,000 events to a
// real node whose pipeline counts them in tumbling windows per key, and the node is
// killed -9 five times meanwhile. Each client retries a request it got no answer to
// with the same Idempotency-Key until it is answered 202, so every event is accepted
// exactly once and the true count of every window is known. At the end the counts in
// the file output, taking each window once (a window emitted just before a kill may be
// emitted again: at-least-once, with the same result), must equal the true counts. The
// same harness in `queue.mode: memory` must see the counts go wrong.
//
// BINGE_CRASH_SEED=N replays a run's random kill moments and batch sizes.

import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { cleanUpNodesAfterEach, printNodeOnFailure } from '../support/hooks.js'
import { delay, makeTempDir, NodeProcess, readOutput, seededRandom, waitFor, writeConfig } from '../support/node-process.js'

const TOTAL = 10_000
const KILLS = 5
const CLIENTS = 8
/** Largest request; sizes are drawn from 1 to it. */
const MAX_BATCH = 32
const GROUPS = 7
/** Window size and lateness, in the events' own time unit (one tick per event). */
const SIZE = 100
const LATENESS = 2_000
const IDLE_MS = 2_000

const watched = printNodeOnFailure()
cleanUpNodesAfterEach()

interface WindowLine {
  id: string
  data: { key: string; start: string; end: string; count: number }
}

interface HarnessResult {
  /** True count per window (key + start), from every event accepted. */
  truth: Map<string, number>
  /** Counts in the output, per window; more than one when it was emitted again. */
  emitted: Map<string, number[]>
  deadletters: number
  requests: { sent: number; retried: number; statuses: Record<number, number> }
  kills: Array<{ accepted: number; inflight?: number; unprocessed?: number }>
  finalStop: Awaited<ReturnType<NodeProcess['kill']>>
  seconds: number
}

const windowOf = (key: string, t: number): string => `${key}@${new Date(Math.floor(t / SIZE) * SIZE).toISOString()}`

async function runHarness(mode: 'durable' | 'memory'): Promise<HarnessResult> {
  const started = Date.now()
  const seed = Number(process.env.BINGE_CRASH_SEED ?? Date.now() % 1_000_000)
  const random = seededRandom(seed)
  console.log(`window crash harness ${mode}: seed ${seed} (BINGE_CRASH_SEED=${seed} replays it)`)

  const dir = makeTempDir(`binge-window-${mode}-`)
  const outFile = path.join(dir, 'out', 'windows.jsonl')
  const configFile = writeConfig(dir, {
    node: { id: `window-${mode}`, dataDir: path.join(dir, 'data') },
    http: { listen: '127.0.0.1:0' },
    queue: { mode },
    workers: 4,
    pipelines: {
      counts: {
        steps: [{ window: { key: 'g', size: SIZE, time: 't', lateness: LATENESS, idle: `${IDLE_MS}ms` } }],
        outputs: [{ file: { path: outFile } }],
      },
    },
  })

  let target: string | undefined
  let node: NodeProcess
  const restart = async (label: string): Promise<NodeProcess> => {
    const n = await NodeProcess.spawn(configFile, { label })
    watched.node = n
    await n.waitReady()
    target = n.url
    return n
  }
  node = await restart(`${mode}#0`)

  // Event time is one global tick per event, taken when the event is made, so events
  // made together have nearby times whatever the network and the kills do to them.
  let tick = 0
  let accepted = 0
  const truth = new Map<string, number>()
  const requests = { sent: 0, retried: 0, statuses: {} as Record<number, number> }
  const post = async (key: string, events: object[]): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) requests.retried++
      const url = target
      if (url === undefined) {
        await delay(10)
        continue
      }
      requests.sent++
      let status = 0
      try {
        const res = await fetch(`${url}/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body: JSON.stringify(events),
          signal: AbortSignal.timeout(10_000),
        })
        status = res.status
        await res.body?.cancel()
      } catch {
        // killed mid-request, or down: the same key again is safe
      }
      requests.statuses[status] = (requests.statuses[status] ?? 0) + 1
      if (status === 202) return
      if (status !== 0 && status !== 503 && status !== 429) throw new Error(`unexpected answer ${status} to ${key}`)
      await delay(10)
    }
  }
  const client = async (c: number): Promise<void> => {
    for (let n = 0; tick < TOTAL; n++) {
      const size = Math.min(TOTAL - tick, 1 + Math.floor(random() * MAX_BATCH))
      const events = Array.from({ length: size }, () => {
        const t = tick++
        const g = `g${t % GROUPS}`
        return { g, t, cid: `e${t}` }
      })
      await post(`c${c}-${n}`, events)
      for (const e of events) truth.set(windowOf(e.g, e.t), (truth.get(windowOf(e.g, e.t)) ?? 0) + 1)
      accepted += events.length
    }
  }

  const kills: HarnessResult['kills'] = []
  const moments = Array.from({ length: KILLS }, (_, i) => Math.floor(((i + 0.3 + random() * 0.5) * TOTAL) / (KILLS + 0.5)))
  const clients = Array.from({ length: CLIENTS }, (_, c) => client(c))
  for (const [i, at] of moments.entries()) {
    await waitFor(() => accepted >= at, { timeoutMs: 60_000, what: `${at} accepted events` })
    const stats = await node.stats().catch(() => undefined)
    kills.push({ accepted, inflight: stats?.queue.inflight, unprocessed: stats?.queue.unprocessed })
    target = undefined
    await node.kill('SIGKILL')
    node = await restart(`${mode}#${i + 1}`)
  }
  await Promise.all(clients)
  await node.waitDrained(60_000)

  // The last windows close when the node has been idle for IDLE_MS: wait for every
  // window there should be (durable), or until the output stops growing (memory).
  const read = () => readOutput(outFile).records as unknown as WindowLine[]
  let seen = -1
  let stableSince = Date.now()
  await waitFor(
    () => {
      const lines = read()
      const ids = new Set(lines.map((l) => `${l.data.key}@${l.data.start}`))
      if ([...truth.keys()].every((w) => ids.has(w))) return true
      if (lines.length !== seen) {
        seen = lines.length
        stableSince = Date.now()
      }
      return Date.now() - stableSince > IDLE_MS + 3_000
    },
    { timeoutMs: 60_000, intervalMs: 100, what: 'the last windows to close' },
  )
  await delay(300)
  const emitted = new Map<string, number[]>()
  for (const line of read()) {
    const w = `${line.data.key}@${line.data.start}`
    emitted.set(w, [...(emitted.get(w) ?? []), line.data.count])
  }
  const deadletters = (await (await fetch(`${node.url}/deadletter`)).json()) as { count: number }
  const finalStop = await node.kill('SIGTERM')
  return { truth, emitted, deadletters: deadletters.count, requests, kills, finalStop, seconds: (Date.now() - started) / 1000 }
}

function compare(r: HarnessResult) {
  let missing = 0
  let wrong = 0
  let phantom = 0
  let reemitted = 0
  let inconsistent = 0
  let counted = 0
  const examples: string[] = []
  const again: string[] = []
  for (const [w, count] of r.truth) {
    const got = r.emitted.get(w)
    if (!got) {
      missing++
      if (examples.length < 5) examples.push(`${w}: missing (true ${count})`)
      continue
    }
    if (got.length > 1) {
      reemitted++
      if (again.length < 3) again.push(w)
    }
    if (new Set(got).size > 1) inconsistent++
    counted += got[0]!
    if (got.some((c) => c !== count)) {
      wrong++
      if (examples.length < 5) examples.push(`${w}: ${got.join(',')} (true ${count})`)
    }
  }
  for (const w of r.emitted.keys()) if (!r.truth.has(w)) phantom++
  return { windows: r.truth.size, missing, wrong, phantom, reemitted, again, inconsistent, counted, examples }
}

function summary(mode: string, r: HarnessResult, c: ReturnType<typeof compare>): string {
  return [
    `${mode}: ${TOTAL} events in ${c.windows} windows; counted ${c.counted}; missing windows ${c.missing}, wrong counts ${c.wrong}, phantom ${c.phantom}, emitted again ${c.reemitted} (e.g. ${c.again.join(', ') || 'none'}; with another count ${c.inconsistent}); dead letters ${r.deadletters}`,
    `kills ${r.kills.length}: ${r.kills.map((k) => `at ${k.accepted} (inflight ${k.inflight}, unprocessed ${k.unprocessed})`).join(', ')}`,
    `requests ${r.requests.sent} (retried ${r.requests.retried}) by status ${JSON.stringify(r.requests.statuses)}; ${r.seconds.toFixed(1)} s`,
    ...c.examples.map((e) => `  e.g. ${e}`),
  ].join('\n  ')
}

describe('windows across kill -9', () => {
  // Typically 30-60 s; the timeout leaves room for a loaded machine (each restart is a
  // fresh CLI process).
  it('durable mode: over 10,000 events and 5 kills, every window count equals the true count', { timeout: 240_000 }, async () => {
    const r = await runHarness('durable')
    const c = compare(r)
    console.log(summary('durable', r, c))
    expect(r.kills).toHaveLength(KILLS)
    expect([...r.truth.values()].reduce((a, b) => a + b, 0)).toBe(TOTAL)
    expect(c.examples).toEqual([])
    expect({ missing: c.missing, wrong: c.wrong, phantom: c.phantom, inconsistent: c.inconsistent }).toEqual({
      missing: 0,
      wrong: 0,
      phantom: 0,
      inconsistent: 0,
    })
    expect(c.counted).toBe(TOTAL)
    expect(r.deadletters).toBe(0)
    expect(r.finalStop).toEqual({ code: 0, signal: null })
  })

  it('memory mode: the same harness sees the counts go wrong (the instrument can see loss)', { timeout: 240_000 }, async () => {
    const r = await runHarness('memory')
    const c = compare(r)
    console.log(summary('memory', r, c))
    // Each kill loses the open windows and the unprocessed events the process held, and
    // the dedupe index: a retried request is accepted again.
    expect(c.missing + c.wrong).toBeGreaterThan(0)
    expect(c.counted).not.toBe(TOTAL)
  })
})

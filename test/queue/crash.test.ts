// kill -9 of a process that is enqueueing, dequeuing, acking and handing off, at random
// moments, several times over the same directory: every event the child saw accepted
// is found again exactly once (unprocessed, dead-lettered or still handing off) unless
// its ack or its batch's completion had started, an acked or handed-off event never
// comes back, an event of a batch still pending or handed off was never processed
// here, and the recovered counters match what is on disk.

import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { DurableQueue } from '../../src/queue/index.js'
import { bytesOf } from './backends.js'
import { buildQueueForChild } from './crash-child.js'

const ROUNDS = 4
let build: string
let script: string
let dir: string

beforeAll(() => {
  build = fs.mkdtempSync(path.join(os.tmpdir(), 'binge-crash-build-'))
  script = buildQueueForChild(build)
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'binge-crash-'))
})
afterAll(() => {
  fs.rmSync(build, { recursive: true, force: true })
  fs.rmSync(dir, { recursive: true, force: true })
})

interface Seen {
  accepted: Set<string>
  ackStarted: Set<string>
  acked: Set<string>
  deadLettered: Set<string>
  /** Handoff id -> the ids it took. */
  batches: Map<string, string[]>
  completeStarted: Set<string>
  completed: Set<string>
  returned: Set<string>
  /** Batches a round found pending from an earlier one. */
  carried: Set<string>
}

/**
 * Run the child until it has reported a random amount of work, then kill -9 it. The
 * moment is counted in reported operations, not milliseconds, so a loaded machine
 * (CI runs test files side by side) still kills each round mid-work, never before it.
 */
async function runAndKill(round: number, seen: Seen): Promise<void> {
  const child = spawn(process.execPath, [script, dir, `r${round}`], { stdio: ['ignore', 'pipe', 'inherit'] })
  let text = ''
  let lines = 0
  const killAfterLines = 150 + Math.floor(Math.random() * 400)
  let killed = false
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk: string) => {
    text += chunk
    lines += chunk.split('\n').length - 1
    if (!killed && text.startsWith('R\n') && lines >= killAfterLines) {
      killed = true
      child.kill('SIGKILL')
    }
  })
  await exited
  expect(lines).toBeGreaterThan(1)
  // Only complete lines count: the last one may have been cut by the kill.
  for (const line of text.split('\n').slice(0, -1)) {
    const [kind, rest = ''] = [line.slice(0, 1), line.slice(2)]
    if (kind === 'A') for (const id of rest.split(',')) seen.accepted.add(id)
    if (kind === 'S') seen.ackStarted.add(rest)
    if (kind === 'D') seen.acked.add(rest)
    if (kind === 'L') seen.deadLettered.add(rest)
    if (kind === 'T' || kind === 'P') {
      const [handoffId = '', taken = ''] = rest.split(' ')
      seen.batches.set(handoffId, taken.split(','))
      if (kind === 'P') seen.carried.add(handoffId)
    }
    if (kind === 'K') seen.completeStarted.add(rest)
    if (kind === 'C') seen.completed.add(rest)
    if (kind === 'B') seen.returned.add(rest)
  }
}

it('keeps every accepted event in exactly one bucket across repeated kill -9', async () => {
  const seen: Seen = {
    accepted: new Set(),
    ackStarted: new Set(),
    acked: new Set(),
    deadLettered: new Set(),
    batches: new Map(),
    completeStarted: new Set(),
    completed: new Set(),
    returned: new Set(),
    carried: new Set(),
  }
  for (let round = 0; round < ROUNDS; round++) await runAndKill(round, seen)

  const q = new DurableQueue({ dir, sync: 'batch', maxEvents: 1e7, maxBytes: 2 ** 40, dedupeWindowMs: 600_000 })
  await q.open()
  try {
    const depth = q.depth()
    const pending = await q.pendingHandoffs()
    const queued = await q.dequeue(10_000_000)
    const letters = await q.listDeadletter()
    const queuedIds = queued.map((e) => e.id)
    const deadIds = letters.map((l) => l.event.id)
    const handing = pending.flatMap((b) => b.events)
    const held = [...queuedIds, ...deadIds, ...handing.map((e) => e.id)]
    const heldSet = new Set(held)
    const deadSet = new Set(deadIds)
    const idsOf = (handoffIds: Iterable<string>): Set<string> => new Set([...handoffIds].flatMap((h) => seen.batches.get(h) ?? []))
    const handedAway = idsOf(seen.completeStarted)
    const handedOff = idsOf(seen.completed)
    const stillPromised = idsOf(pending.map((b) => b.handoffId))

    expect(seen.accepted.size).toBeGreaterThan(100)
    expect(seen.acked.size).toBeGreaterThan(10)
    expect(seen.completed.size).toBeGreaterThan(2)
    expect(seen.returned.size).toBeGreaterThan(0)
    expect(seen.carried.size).toBeGreaterThanOrEqual(ROUNDS - 1) // every restart found the batch left pending
    expect(heldSet.size).toBe(held.length) // no event in two places
    const lost = [...seen.accepted].filter((id) => !heldSet.has(id) && !seen.ackStarted.has(id) && !handedAway.has(id))
    expect(lost).toEqual([])
    expect([...seen.acked].filter((id) => heldSet.has(id))).toEqual([]) // acked stays acked
    expect([...seen.deadLettered].filter((id) => !deadSet.has(id))).toEqual([])
    expect([...handedOff].filter((id) => heldSet.has(id))).toEqual([]) // handed off stays gone
    // A batch promised to a peer is never processed here meanwhile, whatever the restarts.
    expect([...handedOff, ...stillPromised].filter((id) => seen.ackStarted.has(id))).toEqual([])
    expect(pending.filter((b) => seen.completed.has(b.handoffId))).toEqual([])
    expect(depth).toEqual({
      unprocessed: queued.length,
      inflight: 0,
      handingOff: handing.length,
      deadletter: letters.length,
      bytes: [...queued, ...handing].reduce((n, e) => n + bytesOf(e), 0),
    })
    // Queue order is still arrival order within each round's producers.
    expect(queued.map((e) => e.key)).toEqual(queued.map((e) => e.key).sort())
  } finally {
    await q.close()
  }
})

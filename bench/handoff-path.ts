// A handoff's own work, in one process and without libp2p: node A's durable queue holds
// BENCH_HANDOFF_EVENTS 1 KB events (ids binge made, as for POSTs without Idempotency-Key);
// batch after batch, A takes the newest (takeForHandoff), encodes the v2 frame, B decodes
// it and receives it (receiveHandoff: the checks, then B's durable enqueue), and A
// completes the batch. One batch at a time, so each phase's wall time per event shows
// (a take and a receive include their fsync), and the process CPU per event.
// The mesh bench (bench/mesh.ts) measures the same between two processes over libp2p;
// on a shared 2-core machine its figures swing by a third between runs, this one's less.
// Env: BENCH_HANDOFF_EVENTS (default 30000), BENCH_HANDOFF_SIZES (default 512),
// BENCH_ROUNDS (default 3). Prints labelled lines, then one JSON line.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { decodeHandoffFrame, encodeHandoffFrame } from '../src/mesh/handoff-frame.js'
import { type HandoffReceiverComponents, receiveHandoff } from '../src/mesh/handoff-protocol.js'
import { createQueue } from '../src/queue/index.js'
import type { EventQueue, EventRecord } from '../src/queue/types.js'
import { envInt, eventOfSize, line } from './support.js'
import { uuidv7 } from '../src/ids.js'

const TOTAL = envInt('BENCH_HANDOFF_EVENTS', 30_000)
const SIZE = envInt('BENCH_HANDOFF_SIZES', 512)
const ROUNDS = envInt('BENCH_ROUNDS', 3)

interface Phases {
  take: number
  encode: number
  decode: number
  receive: number
  complete: number
}

function open(dir: string): EventQueue {
  return createQueue({ mode: 'durable', dir, sync: 'batch', maxEvents: 10_000_000, maxBytes: 16 * 2 ** 30, dedupeWindowMs: 600_000 })
}

async function fill(queue: EventQueue, total: number): Promise<void> {
  for (let at = 0; at < total; at += 500) {
    const events: EventRecord[] = Array.from({ length: Math.min(500, total - at) }, (_, i) => ({
      id: uuidv7(),
      origin: 'a',
      receivedAt: Date.now(),
      hops: 0,
      data: eventOfSize(1024, { i: at + i }) as EventRecord['data'],
    }))
    await queue.enqueue(events, { newIds: true })
  }
}

async function round(root: string, n: number): Promise<{ perSec: number; cpuUs: number; phases: Phases }> {
  const a = open(path.join(root, `a${n}`))
  const b = open(path.join(root, `b${n}`))
  await a.open()
  await b.open()
  try {
    await fill(a, TOTAL)
    const parts: HandoffReceiverComponents = {
      queue: b,
      highWaterMark: Number.MAX_SAFE_INTEGER,
      maxEventBytes: 1024 * 1024,
      accepting: () => true,
      hasPipeline: () => true,
      onHandedIn: () => {},
    }
    const spent: Phases = { take: 0, encode: 0, decode: 0, receive: 0, complete: 0 }
    const timed = async <T>(phase: keyof Phases, work: () => T | Promise<T>): Promise<T> => {
      const t = performance.now()
      const result = await work()
      spent[phase] += performance.now() - t
      return result
    }
    let moved = 0
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    for (let i = 0; ; i++) {
      const options = { handoffId: `h${i}`, peer: 'b', maxHops: 2, maxBytes: 15 * 2 ** 20 }
      const batch = await timed('take', () => a.takeForHandoff(SIZE, options))
      if (batch === undefined) break
      const envelope = { handoffId: batch.handoffId, kind: 'overflow' as const, from: 'a' }
      const frame = await timed('encode', () => encodeHandoffFrame(envelope, batch.events, batch.texts))
      const decoded = await timed('decode', () => decodeHandoffFrame(frame))
      const answer = await timed('receive', () => receiveHandoff(decoded.body, 'a', parts, decoded))
      if (answer.status !== 'accepted' || answer.accepted !== batch.events.length) throw new Error(`B answered ${JSON.stringify(answer)}`)
      await timed('complete', () => a.completeHandoff(batch.handoffId))
      moved += batch.events.length
    }
    const seconds = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    if (moved !== TOTAL || b.depth().unprocessed !== TOTAL) throw new Error(`moved ${moved}, B holds ${b.depth().unprocessed}`)
    const us = (ms: number) => Math.round((ms * 10_000) / moved) / 10
    const phases: Phases = {
      take: us(spent.take),
      encode: us(spent.encode),
      decode: us(spent.decode),
      receive: us(spent.receive),
      complete: us(spent.complete),
    }
    return { perSec: Math.round(moved / seconds), cpuUs: Math.round(((cpu.user + cpu.system) * 10) / moved) / 10, phases }
  } finally {
    await a.close()
    await b.close()
  }
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'binge-bench-handoff-path-'))
  const runs = []
  try {
    process.stdout.write(`handoff path in one process (no libp2p): ${TOTAL} 1 KB events, batch ${SIZE}, node ${process.version}\n`)
    for (let n = 0; n < ROUNDS; n++) {
      const run = await round(root, n)
      runs.push(run)
      const p = run.phases
      line(`round ${n + 1}`, `${run.perSec} events/s, CPU ${run.cpuUs} µs/event`)
      line('  wall µs/event: take, encode, decode, receive, complete', `${p.take}, ${p.encode}, ${p.decode}, ${p.receive}, ${p.complete}`)
    }
    process.stdout.write(`${JSON.stringify({ events: TOTAL, batch: SIZE, runs })}\n`)
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
}

await main()

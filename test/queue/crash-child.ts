// Helpers for the kill -9 test: build the queue's source into plain ESM a child node
// process can run (no TS loader is installed), and the child's script itself.

import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = fileURLToPath(new URL('../..', import.meta.url))

/** Transpile src/queue (its durable/ folder too) and src/errors.ts into `dir`, ready for `node`. */
export function buildQueueForChild(dir: string): string {
  const sources = [
    'src/errors.ts',
    'src/ids.ts',
    ...fs
      .readdirSync(path.join(root, 'src/queue'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => `src/queue/${f}`),
  ]
  for (const rel of sources) {
    const out = ts.transpileModule(fs.readFileSync(path.join(root, rel), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    })
    const target = path.join(dir, rel.replace(/\.ts$/, '.js'))
    fs.mkdirSync(path.dirname(target), { recursive: true })
    fs.writeFileSync(target, out.outputText)
  }
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }))
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir')
  const script = path.join(dir, 'child.js')
  fs.writeFileSync(script, CHILD)
  return script
}

/**
 * The child: producers enqueue batches of new ids while workers dequeue and ack them
 * (one in five to a dead letter) and an offloader hands the newest off (a batch taken,
 * "sent", then acked by the peer, or one in three refused and returned), until it is
 * killed. Its first batch stays pending (a peer that never answers), and every batch
 * an earlier round left pending is resolved, acked or taken back, while the workers
 * already run, so a worker that got one would show. It prints a line only after the
 * call it reports has resolved: `A id,...` accepted, `D id` acked, `L id`
 * dead-lettered, `T hid id,...` taken for a handoff, `P hid id,...` found pending at
 * start (the kill may have cut its `T`), `C hid` completed, `B hid` returned; `S id`
 * and `K hid` are printed before an ack or a complete starts (the event or batch may
 * be gone without a `D` or `C`).
 * Writes to a pipe are synchronous on Linux, so a printed line was really reported.
 */
const CHILD = `
import { DurableQueue } from './src/queue/index.js'
const [dir, round] = process.argv.slice(2)
const q = new DurableQueue({ dir, sync: 'batch', maxEvents: 1e6, maxBytes: 1 << 30, dedupeWindowMs: 600000 })
await q.open()
process.stdout.write('R\\n')
let n = 0
async function produce() {
  for (;;) {
    const events = Array.from({ length: 1 + (n % 7) }, () => ({
      id: round + '-' + n++, origin: 'child', receivedAt: Date.now(), hops: 0, data: { pad: 'x'.repeat(200) },
    }))
    const results = await q.enqueue(events)
    process.stdout.write('A ' + results.map((r) => r.id).join(',') + '\\n')
  }
}
async function work() {
  for (;;) {
    await q.waitForWork()
    for (const e of await q.dequeue(5)) {
      const dead = Number(e.id.split('-')[1]) % 5 === 0
      process.stdout.write('S ' + e.id + '\\n')
      await q.ack(e, dead ? { deadletter: [{ pipeline: 'p', error: 'boom', attempts: 1 }] } : {})
      process.stdout.write((dead ? 'L ' : 'D ') + e.id + '\\n')
    }
  }
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
async function complete(handoffId) {
  process.stdout.write('K ' + handoffId + '\\n')
  await q.completeHandoff(handoffId)
  process.stdout.write('C ' + handoffId + '\\n')
}
async function giveBack(handoffId) {
  await q.returnHandoff(handoffId)
  process.stdout.write('B ' + handoffId + '\\n')
}
async function offload() {
  let leftPending = false
  for (let h = 0; ; h++) {
    await sleep(5)
    const handoffId = round + '-h' + h
    const batch = await q.takeForHandoff(20, { handoffId, peer: 'peer', maxHops: 1 })
    if (batch === undefined) continue
    process.stdout.write('T ' + handoffId + ' ' + batch.events.map((e) => e.id).join(',') + '\\n')
    if (!leftPending) {
      leftPending = true // its peer never answers this round: the next one resolves it
      continue
    }
    await sleep(5)
    await (h % 3 === 0 ? giveBack(handoffId) : complete(handoffId))
  }
}
async function resolveEarlier(pending) {
  await sleep(30)
  for (const [i, batch] of pending.entries()) await (i % 2 === 0 ? complete(batch.handoffId) : giveBack(batch.handoffId))
}
const pending = await q.pendingHandoffs()
for (const batch of pending) {
  process.stdout.write('P ' + batch.handoffId + ' ' + batch.events.map((e) => e.id).join(',') + '\\n')
}
for (let i = 0; i < 4; i++) void produce()
for (let i = 0; i < 2; i++) void work()
void offload()
void resolveEarlier(pending)
`

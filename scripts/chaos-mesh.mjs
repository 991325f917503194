#!/usr/bin/env node
// The long fault loop for the mesh handoff: the rounds of test/mesh/faults.test.ts
// (kill -9 of a receiver or of the sender mid-handoff, SIGSTOP of a receiver for 10 s),
// many more of them, with the same exactly-once check after each (lost 0, no id output
// by two nodes, same-node copies only after a kill of that node and within what it
// had in flight). Prints one line per round; exits 1 at the first round that fails.
//
//   npm run chaos -- [rounds=60]   (npm runs it on the Node 24 of node_modules/.bin)
//
// BINGE_CHAOS_MESH_EVERY=N starts a fresh mesh every N rounds (default 25), so data
// dirs and the ledger stay small; BINGE_CHAOS_KINDS=sender-stop,receiver-kill runs only
// those kinds, in turn; BINGE_KEEP_TMP=1 keeps the data dirs.
// The harness is TypeScript shared with the suite; vite (vitest's own dependency)
// loads it, the same way vitest does.
import { createServer } from 'vite'
import { fileURLToPath } from 'node:url'

const rounds = Number(process.argv[2] ?? 60)
if (!Number.isInteger(rounds) || rounds < 1) {
  console.error('usage: npm run chaos -- [rounds]')
  process.exit(2)
}
const perMesh = Number(process.env.BINGE_CHAOS_MESH_EVERY ?? 25)
// Every kind in turn; a 10 s SIGSTOP every tenth round, of a receiver and of the sender in turn.
const cycle = ['receiver-kill', 'sender-kill', 'receiver-kill-pinned', 'sender-kill-pinned']
const only = process.env.BINGE_CHAOS_KINDS?.split(',').filter(Boolean)
const kindOf = (i) =>
  only ? only[i % only.length] : i % 10 === 9 ? (i % 20 === 9 ? 'receiver-stop' : 'sender-stop') : cycle[i % cycle.length]

const root = fileURLToPath(new URL('..', import.meta.url))
const vite = await createServer({
  root,
  configFile: false,
  logLevel: 'error',
  appType: 'custom',
  server: { middlewareMode: true, hmr: false, ws: false },
  optimizeDeps: { noDiscovery: true, include: [] },
})
const { FaultMesh } = await vite.ssrLoadModule('/test/support/faults.ts')
const { killAllNodes, removeTempDirs } = await vite.ssrLoadModule('/test/support/node-process.ts')

let mesh
let failed = false
const cleanup = async () => {
  await mesh?.close().catch(() => undefined)
  mesh = undefined
  await killAllNodes()
  removeTempDirs(failed)
}
process.once('SIGINT', () => void cleanup().then(() => process.exit(130)))

const started = Date.now()
let current = 0
const totals = {
  rounds: 0,
  acked: 0,
  lost: 0,
  handoffDuplicates: 0,
  unexplained: 0,
  reoutputs: 0,
  unknownOutcomes: 0,
  alreadyHeld: 0,
  pendingAtKill: 0,
}
try {
  for (let i = 0; i < rounds; i++) {
    current = i + 1
    if (i % perMesh === 0) {
      if (mesh) {
        const c = mesh.check()
        totals.acked += c.acked
        totals.reoutputs += c.reoutputs
        await cleanup()
      }
      mesh = await FaultMesh.start({
        sender: { id: 'a', workers: 2 },
        receivers: [
          { id: 'b', workers: 2 },
          { id: 'c', workers: 2 },
        ],
        prefix: `m${i}-`,
        log: (line) => console.log(`[${current}/${rounds}] ${line}`),
      })
    }
    const r = await mesh.round(kindOf(i))
    totals.rounds++
    totals.lost = Math.max(totals.lost, r.check.lost.length)
    totals.handoffDuplicates += r.check.handoffDuplicates.length
    totals.unexplained += r.check.unexplained.length
    totals.unknownOutcomes += r.unknownOutcomes
    totals.alreadyHeld += r.alreadyHeld
    totals.pendingAtKill += r.pendingAtKill ?? 0
    if (!r.ok) {
      failed = true
      console.error(
        `round ${r.round} FAILED: ${JSON.stringify({ lost: r.check.lost.slice(0, 20), handoffDuplicates: r.check.handoffDuplicates.slice(0, 20), unexplained: r.check.unexplained.slice(0, 20), overBound: r.check.overBound, phantoms: r.check.phantoms.slice(0, 20) })}`,
      )
      break
    }
  }
  if (mesh) {
    const c = mesh.check()
    totals.acked += c.acked
    totals.reoutputs += c.reoutputs
  }
} catch (err) {
  failed = true
  console.error(err)
  if (mesh) console.error(await mesh.describe(40).catch(() => ''))
} finally {
  await cleanup()
  await vite.close()
}
console.log(
  `${failed ? 'FAILED' : 'ok'}: ${totals.rounds} rounds in ${((Date.now() - started) / 1000).toFixed(0)} s; acked ${totals.acked}, lost ${totals.lost}, ` +
    `handoff duplicates ${totals.handoffDuplicates}, unexplained same-node duplicates ${totals.unexplained}, re-outputs after kills ${totals.reoutputs}; ` +
    `sender saw ${totals.unknownOutcomes} unknown outcomes, ${totals.alreadyHeld} resends already held, ${totals.pendingAtKill} batches on disk at sender kills`,
)
process.exit(failed ? 1 : 0)

// The per-file test hooks of suites that run real child nodes, in one place. Kept out
// of node-process.ts and mesh.ts: scripts/chaos-mesh.mjs loads those outside vitest.
import { afterEach, beforeEach, onTestFailed } from 'vitest'
import { closeWebhooks } from './mesh.js'
import { killAllNodes, removeTempDirs, type NodeProcess } from './node-process.js'
import type { MeshNode } from './mesh.js'

/**
 * After each test: `before` (say, thaw a frozen node), kill every node, `after` (say,
 * close a server the nodes were connected to), close the webhooks, and remove the temp
 * dirs, keeping them for inspection once any test of the file failed.
 */
export function cleanUpNodesAfterEach({ before, after }: { before?: () => unknown; after?: () => unknown } = {}): void {
  let failed = false
  afterEach((ctx) => {
    failed ||= ctx.task.result?.state === 'fail'
  })
  afterEach(async () => {
    await before?.()
    await killAllNodes()
    await after?.()
    await closeWebhooks()
    removeTempDirs(failed)
  })
}

/**
 * The node a test talks to now: set `watched.node` as it starts one, and its stderr is
 * printed if the test fails (onTestFailed runs after afterEach killed it, so the node is
 * forgotten at the start of each test, not at its end).
 */
export function printNodeOnFailure(): { node?: NodeProcess } {
  const watched: { node?: NodeProcess } = {}
  beforeEach(() => {
    watched.node = undefined
    onTestFailed(() => {
      if (watched.node) console.error(watched.node.tail(80))
    })
  })
  return watched
}

/**
 * Freeze and thaw mesh nodes (SIGSTOP/SIGCONT, by the pid of the child this test
 * started), with the per-file cleanup, which thaws any node still frozen before the
 * nodes are killed.
 */
export function freezerWithCleanUp(): (n: MeshNode, frozen: boolean) => void {
  const frozenPids = new Set<number>()
  cleanUpNodesAfterEach({
    before: () => {
      for (const pid of frozenPids) process.kill(pid, 'SIGCONT')
      frozenPids.clear()
    },
  })
  return (n, on) => {
    process.kill(n.proc.pid, on ? 'SIGSTOP' : 'SIGCONT')
    if (on) frozenPids.add(n.proc.pid)
    else frozenPids.delete(n.proc.pid)
  }
}

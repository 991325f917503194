// A start that fails half way leaves nothing behind (docs/design.md §1): here the mesh
// cannot listen (its port is taken), after the HTTP port, the queue and the pipelines
// started. The start rejects with that error, the HTTP port is closed again, and the
// store's lock is released, so the node can be started again once the port is free.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/index.js'
import { silentLogger } from '../../src/log.js'
import { BingeNode } from '../../src/node.js'
import { DurableQueue } from '../../src/queue/index.js'

const cleanups: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function node(dir: string, id: string, meshListen: string): BingeNode {
  const text = [
    `node: { id: ${id}, dataDir: ${JSON.stringify(join(dir, id))} }`,
    `http: { listen: '127.0.0.1:0' }`,
    `mesh: { listen: ${meshListen}, psk: k }`,
    `pipelines: { p: { outputs: [ { file: { path: ${JSON.stringify(join(dir, `${id}.jsonl`))} } } ] } }`,
  ].join('\n')
  return new BingeNode(parseConfig(text, join(dir, `${id}.yaml`)), { log: silentLogger, processMetrics: false })
}

describe('a failed start', () => {
  it('stops what already started: the HTTP port closes and the store can be opened again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'binge-start-fail-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const holder = node(dir, 'holder', '/ip4/127.0.0.1/tcp/0')
    await holder.start()
    cleanups.push(() => holder.stop())
    const taken = holder.mesh!.addresses().find((a) => a.startsWith('/ip4/127.0.0.1/tcp/'))!
    const loser = node(dir, 'loser', taken.replace(/\/p2p\/.*$/, ''))
    let httpPort: number | undefined
    const started = loser.start()
    // The HTTP port opens first (for /healthz while recovering); note it to probe it after.
    httpPort = await new Promise<number | undefined>((resolve) => {
      const poll = () => (loser.httpAddress() ? resolve(loser.httpAddress()!.port) : setTimeout(poll, 1))
      poll()
      void started.catch(() => resolve(loser.httpAddress()?.port))
    })
    await expect(started).rejects.toThrow()
    expect(loser.phase()).toBe('stopped')
    if (httpPort !== undefined) {
      await expect(fetch(`http://127.0.0.1:${httpPort}/healthz`, { signal: AbortSignal.timeout(5_000) })).rejects.toThrow()
    }
    // The store's lock is released: the same data dir opens again.
    const queue = new DurableQueue({ dir: join(dir, 'loser', 'queue'), sync: 'batch', maxEvents: 10, maxBytes: 1e6, dedupeWindowMs: 1_000 })
    await queue.open()
    await queue.close()
  })
})

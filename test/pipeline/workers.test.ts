// The worker pool's take-ahead (workers.ts) on a real node and queue: a worker takes
// its next batch while its output runs, so events are delivered exactly once and a
// stop returns what was taken ahead; a batch taken ahead while the output stalls goes
// back to the queue, where the mesh could hand it on. Durable and memory alike.
import { afterEach, describe, expect, it } from 'vitest'
import { closeWebhooks, startWebhook } from '../support/mesh.js'
import { startTempNode, waitFor, type TempNode } from '../support/temp-node.js'

const json = { 'content-type': 'application/json' }
let node: TempNode | undefined

afterEach(async () => {
  await node?.close()
  node = undefined
  await closeWebhooks()
})

async function post(n: TempNode, events: number): Promise<void> {
  const res = await n.node.app.request('/events', {
    method: 'POST',
    body: JSON.stringify(Array.from({ length: events }, (_, i) => ({ cid: `c${i}` }))),
    headers: json,
  })
  expect(res.status).toBe(202)
}

describe.each(['durable', 'memory'])('workers taking ahead (%s)', (mode) => {
  const config = (url: string, workers: number) =>
    `queue: { mode: ${mode} }\nworkers: ${workers}\npipelines:\n  p: { outputs: [ { http: { url: '${url}', timeout: 60s } } ] }\n`

  it('delivers every event exactly once, one worker or several', async () => {
    for (const workers of [1, 3]) {
      const hook = await startWebhook({ delayMs: 5 })
      node = await startTempNode(config(hook.url, workers))
      await post(node, 500)
      await waitFor(() => node!.node.stats().counters.processed === 500, { what: 'all 500 processed' })
      expect(hook.counts.size).toBe(500)
      expect([...hook.counts.values()].every((n) => n === 1)).toBe(true)
      // A worker acks in the background once its output answered (processed counts
      // then), so the last ack may still be on its way: wait for it.
      await waitFor(() => node!.node.queue.depth().inflight === 0, { what: 'the last acks written' })
      expect(node.node.queue.depth()).toMatchObject({ unprocessed: 0, inflight: 0 })
      await node.close()
      node = undefined
    }
  })

  it('gives a batch taken ahead back to the queue while the output stalls, and delivers it once released', async () => {
    const hook = await startWebhook({ held: true })
    node = await startTempNode(config(hook.url, 1))
    await post(node, 200)
    // The worker's batch waits for the held output; the one it took ahead goes back.
    await waitFor(() => node!.node.queue.depth().inflight === 32 && node!.node.queue.depth().unprocessed === 168, {
      what: 'only the running batch in flight',
    })
    hook.release()
    await waitFor(() => node!.node.stats().counters.processed === 200, { what: 'all 200 processed' })
    expect(hook.counts.size).toBe(200)
    expect([...hook.counts.values()].every((n) => n === 1)).toBe(true)
  })

  it('a stop returns the batch taken ahead: nothing stays in flight', async () => {
    const hook = await startWebhook({ delayMs: 50 })
    node = await startTempNode(config(hook.url, 1))
    await post(node, 300)
    await waitFor(() => node!.node.queue.depth().inflight === 64, { what: 'a batch running and one taken ahead' })
    const { queue } = node.node
    // The pool alone (private to the node): its stop, not the queue's close, must return them.
    await (node.node as unknown as { workers: { stop(): Promise<void> } }).workers.stop()
    expect(queue.depth().inflight).toBe(0)
    expect(queue.depth().unprocessed + node.node.stats().counters.processed).toBe(300)
  })
})

// A direct handoff whose outcome is unknown (docs/design.md §3, §5): a node at its hard cap hands
// a request to a peer that freezes mid-handoff. The client gets a 503 and retries with
// its Idempotency-Key; by then a less-loaded peer has joined. The retry must go to the
// frozen-then-thawed peer, which may hold the first copy (it reads the frame when it
// thaws, unless the sender's abort reaches it first): if it does, it drops the second
// and the client hears `duplicate: true`; either way no event is stored twice. Real
// child processes, SIGSTOP/SIGCONT by pid.
import { describe, expect, it } from 'vitest'
import { freezerWithCleanUp } from '../support/hooks.js'
import { makeTempDir } from '../support/node-process.js'
import { bootstrapOf, meshStats, postJson, startMeshNode, startWebhook, waitFor } from '../support/mesh.js'

const freeze = freezerWithCleanUp()

describe('a direct handoff with an unknown outcome', () => {
  it("answers 503, and the client's retry reaches the peer that may hold the events, which reports the duplicate", {
    timeout: 180_000,
  }, async () => {
    const dir = makeTempDir('binge-mesh-unknown-')
    const held = await startWebhook({ held: true })
    const pipelines = { p: { outputs: [{ http: { url: held.url, timeout: '60s' } }] } }
    // A's cap is 10 and its high-water mark too: the offloader never acts, only admission.
    const mesh = { gossipInterval: '200ms', handoffTimeout: '1s' }
    const a = await startMeshNode({
      id: 'a',
      dir,
      pipelines,
      workers: 1,
      queue: { highWaterMark: 10, lowWaterMark: 5, maxEvents: 10 },
      mesh,
    })
    const b = await startMeshNode({ id: 'b', dir, bootstrap: [bootstrapOf(a)], pipelines, workers: 1, mesh })
    await waitFor(async () => (await meshStats(a)).peers.some((p) => p.node === 'b' && p.connected), { what: 'A to see B' })
    const fill = await postJson(
      `${a.url}/events`,
      Array.from({ length: 10 }, (_, i) => ({ i })),
    )
    expect(fill.status).toBe(202)
    // B has work of its own queued (its one worker holds 32 at the held webhook), so by
    // load a new, empty peer beats it.
    expect(
      (
        await postJson(
          `${b.url}/events`,
          Array.from({ length: 100 }, (_, i) => ({ own: i })),
        )
      ).status,
    ).toBe(202)
    await waitFor(async () => (await meshStats(a)).peers.some((p) => p.node === 'b' && p.load.depth >= 60), { what: "A to hear B's depth" })

    // B freezes: A's handoff of the keyed request (and its one resend) times out.
    freeze(b, true)
    const first = await postJson(`${a.url}/events`, { order: 17 }, { 'idempotency-key': 'order-17' })
    expect(first.status).toBe(503)
    expect(String(first.body.error)).toContain('same Idempotency-Key')
    freeze(b, false)

    // C joins, empty: by load alone A would pick C for the retry.
    const c = await startMeshNode({ id: 'c', dir, bootstrap: [bootstrapOf(a)], pipelines, workers: 1, mesh })
    await waitFor(
      async () => {
        const peers = (await meshStats(a)).peers
        return peers.some((p) => p.node === 'c' && p.connected) && peers.some((p) => p.node === 'b' && p.connected && p.ageMs < 1_000)
      },
      { what: 'A to see C, and B alive again' },
    )
    // Whatever B made of the frames it found when it thawed is settled by now.
    const storedBefore = (await meshStats(b)).counters.handedIn
    expect(storedBefore).toBeLessThanOrEqual(1)
    const retry = await postJson(`${a.url}/events`, { order: 17 }, { 'idempotency-key': 'order-17' })
    expect(retry.status).toBe(202)
    expect(retry.body.ids).toEqual(['order-17'])
    expect(retry.body.duplicate === true).toBe(storedBefore === 1)
    const [sa, sb, sc] = await Promise.all([meshStats(a), meshStats(b), meshStats(c)])
    expect(sb.counters.handedIn).toBe(1)
    expect(sc.counters.handedIn).toBe(0)
    expect(sa.counters.received).toBe(storedBefore === 1 ? 10 : 11)
  })
})

// A full disk is a state, not a crash: a real node with its data dir on a 24 MiB tmpfs
// (mounted here; the suite runs as root) and its http output on another volume. Clients
// post until the watermark (queue.minFreeDisk) refuses them with 429; a filler file then
// takes every byte left, and the held webhook is let go, so the workers' acks hit
// ENOSPC and the store faults (503). Then the filler goes. Throughout: no 500, only
// 202/429/503; afterwards every event answered 202 reaches the webhook exactly once,
// none answered 429 does, and POSTs are taken again by themselves.

import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cleanUpNodesAfterEach, printNodeOnFailure } from '../support/hooks.js'
import { checkExactlyOnce, startWebhook } from '../support/mesh.js'
import { NodeProcess, delay, getJson, makeTempDir, postEvents, waitFor, writeConfig } from '../support/node-process.js'

const watched = printNodeOnFailure()
cleanUpNodesAfterEach()

let base = ''
let volume = ''

beforeAll(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'binge-diskfull-'))
  volume = path.join(base, 'vol')
  fs.mkdirSync(volume)
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', volume], { stdio: 'pipe' })
  } catch (err) {
    fs.rmSync(base, { recursive: true, force: true })
    const why = (err as { stderr?: Buffer }).stderr?.toString().trim() || String(err)
    throw new Error(`this test mounts a 24 MiB tmpfs and must run as root (or with CAP_SYS_ADMIN); mount failed: ${why}`)
  }
})

afterAll(() => {
  if (!volume) return
  // afterEach has killed the node by then: nothing holds the file system.
  execFileSync('umount', [volume], { stdio: 'pipe' })
  fs.rmSync(base, { recursive: true, force: true })
})

interface DiskStats {
  queue: { unprocessed: number; inflight: number }
  disk?: { freeBytes: number; minFreeBytes: number; belowWatermark: boolean; storeFaulted: boolean }
}

/** Append to `file` until the volume is full (or `limit` bytes were written); returns its path. */
function fillVolume(file: string, limit = Number.POSITIVE_INFINITY): string {
  const fd = fs.openSync(file, 'a')
  let written = 0
  try {
    for (const size of [1 << 20, 64 << 10, 4 << 10, 512]) {
      const chunk = Buffer.alloc(size, 7)
      while (written + size <= limit) {
        try {
          written += fs.writeSync(fd, chunk)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break
          throw err
        }
      }
    }
  } finally {
    fs.closeSync(fd)
  }
  return file
}

describe('a full data volume', () => {
  it('refuses with 429 and 503, never 500, loses nothing acknowledged and takes events again once space is back', async () => {
    const started = Date.now()
    const hook = await startWebhook({ held: true })
    const dir = makeTempDir('binge-diskfull-conf-')
    const configFile = writeConfig(dir, {
      node: { id: 'diskfull', dataDir: path.join(volume, 'data') },
      http: { listen: '127.0.0.1:0' },
      workers: 2,
      log: { level: 'info' },
      // A held webhook must not time out into dead letters: it is the backlog we want.
      pipelines: { all: { outputs: [{ http: { url: hook.url, timeout: '2m' } }] } },
    })
    // Another process's file takes a third of the volume from the start: what it frees
    // later is what "space comes back" means (the node's own backlog fills the rest).
    const filler = fillVolume(path.join(volume, 'filler'), 8 * 2 ** 20)
    const node = await NodeProcess.start(configFile, { label: 'diskfull' })
    watched.node = node
    const stats = () => getJson<DiskStats>(`${node.url}/stats`)

    // Clients: batches of 40 events of ~700 random bytes (incompressible), each with its own cid.
    const acked = new Set<string>()
    const refused = new Set<string>()
    const unsure = new Set<string>()
    const statuses = new Map<number, number>()
    const retryAfter = new Map<number, Set<string>>()
    let stop = false
    let n = 0
    const loop = async (client: number) => {
      while (!stop) {
        const cids = Array.from({ length: 40 }, () => `c${client}-${n++}`)
        const res = await postEvents(
          node.url!,
          cids.map((cid) => ({ cid, pad: randomBytes(512).toString('base64') })),
        )
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
        if (res.status === 429 || res.status === 503) {
          if (!retryAfter.has(res.status)) retryAfter.set(res.status, new Set())
          retryAfter.get(res.status)!.add(String(res.retryAfter))
        }
        // 503 while faulted: maybe stored (its write may have landed), so unknown, not refused.
        const into = res.status === 202 ? acked : res.status === 429 ? refused : unsure
        for (const cid of cids) into.add(cid)
        if (res.status !== 202) await delay(20)
      }
    }
    const clients = Array.from({ length: 4 }, (_, i) => loop(i))
    // An answer outside 202/429/503 (a 500, no answer) ends the phases at once: the
    // assertions at the end then say what happened, with the figures.
    const unexpected = () => [...statuses.keys()].some((status) => ![202, 429, 503].includes(status))
    const until = (done: () => boolean, timeoutMs: number) =>
      waitFor(() => done() || unexpected(), { timeoutMs }).then(
        () => done(),
        () => false,
      )
    const seen: { low?: DiskStats; metrics?: string; faulted?: boolean; recoveredMs?: number } = {}
    try {
      // 1. Below the watermark: 429, with the disk state in /stats and /metrics.
      if (await until(() => (statuses.get(429) ?? 0) >= 20, 60_000)) {
        // The state can flip back for a moment as a compaction frees space: poll for it.
        await waitFor(
          async () => {
            seen.low = await stats()
            seen.metrics = await (await fetch(`${node.url}/metrics`)).text()
            return seen.low.disk?.belowWatermark && /^binge_disk_below_watermark\{[^}]*\} 1$/m.test(seen.metrics)
          },
          { timeoutMs: 15_000 },
        ).catch(() => undefined)
        // 2. Another process takes every byte left; the workers' acks then hit ENOSPC.
        fillVolume(filler)
        hook.release()
        seen.faulted = await until(() => (statuses.get(503) ?? 0) >= 5, 30_000)
        // 3. Space comes back: the node reopens its store, drains, and takes POSTs again.
        const freedAt = Date.now()
        const ackedBefore = acked.size
        fs.rmSync(filler)
        if (await until(() => acked.size > ackedBefore, 30_000)) seen.recoveredMs = Date.now() - freedAt
      }
    } finally {
      stop = true
      hook.release()
      await Promise.all(clients)
      // Space comes back however the phases ended: a node that cannot recover then is at fault.
      fs.rmSync(filler, { force: true })
    }
    const drained = await node.waitDrained(30_000).catch(() => undefined)
    await waitFor(() => [...acked].every((cid) => hook.counts.has(cid)), { timeoutMs: 20_000 }).catch(() => undefined)

    const check = checkExactlyOnce(acked, hook.counts, unsure)
    const logged = (level: number, msg: RegExp) => node.logs.filter((l) => l.level === level && msg.test(String(l.msg))).length
    console.log(
      `disk full: ${JSON.stringify({
        acknowledged: acked.size,
        lost: check.lost.length,
        duplicates: check.duplicates,
        refused: refused.size,
        refusedDelivered: check.phantoms.length,
        unsure: unsure.size,
        unsureDelivered: [...unsure].filter((cid) => hook.counts.has(cid)).length,
        statuses: Object.fromEntries(statuses),
        retryAfter: Object.fromEntries([...retryAfter].map(([k, v]) => [k, [...v]])),
        recoveredMs: seen.recoveredMs,
        seconds: (Date.now() - started) / 1000,
        logs: {
          belowWatermark: logged(40, /below queue\.minFreeDisk/),
          aboveAgain: logged(30, /back above queue\.minFreeDisk/),
          faults: logged(50, /data volume is full/),
          reopened: logged(30, /store reopened/),
        },
      })}`,
    )
    expect(Object.fromEntries(statuses), 'only 202, 429 and 503, each seen').toEqual({
      202: expect.any(Number),
      429: expect.any(Number),
      503: expect.any(Number),
    })
    expect(check.lost.length, 'acknowledged events not delivered').toBe(0)
    expect(check.duplicates, 'events delivered twice').toBe(0)
    expect(check.phantoms, 'events answered 429 yet delivered').toEqual([])
    expect(seen.recoveredMs, 'a POST taken within 30 s of space coming back').toBeDefined()
    expect(
      [...retryAfter.values()].every((set) => ![...set].includes('null')),
      'Retry-After on every 429 and 503',
    ).toBe(true)
    expect(drained, 'the backlog drains (no ack left hanging in flight)').toBeDefined()
    expect(seen.low?.disk?.belowWatermark).toBe(true)
    // Entered under minFreeBytes; it stays below until 5% above it (disk-space.ts), so a
    // compaction may have freed a little by the time /stats was read.
    expect(seen.low!.disk!.freeBytes).toBeLessThan(seen.low!.disk!.minFreeBytes * 1.05)
    expect(seen.metrics).toMatch(/^binge_disk_below_watermark\{[^}]*\} 1$/m)
    expect(seen.metrics).toMatch(/^binge_disk_free_bytes\{[^}]*\} \d+/m)
    expect(logged(40, /below queue\.minFreeDisk/), 'WARN on entering the state').toBeGreaterThanOrEqual(1)
    expect(logged(30, /back above queue\.minFreeDisk/), 'INFO on leaving it').toBeGreaterThanOrEqual(1)
    expect(logged(50, /data volume is full/)).toBeGreaterThanOrEqual(1)
    expect(logged(30, /store reopened/)).toBeGreaterThanOrEqual(1)
    expect(node.alive).toBe(true)
  }, 120_000)
})

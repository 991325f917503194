// queue.minFreeDisk: how it is written (a size or a percentage of the volume), what it
// means on volumes from a 24 MiB test file system to a big disk, and how the watch on
// the volume estimates free space between two statfs readings.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/load.js'
import { DiskSpace, type DiskState, SpaceReclaimer, minFreeBytes, writeBufferFor } from '../../src/queue/durable/disk-space.js'
import { isDiskFull } from '../../src/queue/durable/store-health.js'
import { receiveHandoff } from '../../src/mesh/handoff-protocol.js'
import { DurableQueue } from '../../src/queue/index.js'
import { BingeError } from '../../src/errors.js'
import { event } from './backends.js'
import { parseSizeOrShare } from '../../src/util/size.js'

const MiB = 2 ** 20
const GiB = 2 ** 30

describe('queue.minFreeDisk values', () => {
  it.each([
    ['256MiB', { bytes: 256 * MiB }],
    ['1GiB', { bytes: GiB }],
    ['500MB', { bytes: 500e6 }],
    [1048576, { bytes: MiB }],
    ['5%', { percent: 5 }],
    [' 12.5% ', { percent: 12.5 }],
    ['.5%', { percent: 0.5 }],
  ])('%j is %j', (input, expected) => {
    expect(parseSizeOrShare(input)).toEqual(expected)
  })

  it.each([['0%'], ['100%'], ['150%']])('%j is refused as a percentage out of range', (input) => {
    expect(() => parseSizeOrShare(input)).toThrow(/a percentage must be over 0% and under 100%, got/)
  })

  it.each([['5 percent'], ['%5'], ['-5%'], ['lots'], [''], [-1]])('%j is refused, saying what is expected', (input) => {
    expect(() => parseSizeOrShare(input)).toThrow(/expected a size or percentage like 256MiB or 5% \(of the volume\), got/)
  })

  it('is read from a config file, and a bad value is reported at its path', () => {
    const load = (text: string) => parseConfig(text, 'node.yaml', {})
    expect(load('queue: { minFreeDisk: 5% }\n').queue.minFreeDisk).toEqual({ percent: 5 })
    expect(load('queue: { minFreeDisk: 64MiB }\n').queue.minFreeDisk).toEqual({ bytes: 64 * MiB })
    expect(load('queue: {}\n').queue.minFreeDisk).toBeUndefined()
    expect(() => load('queue: { minFreeDisk: 200% }\n')).toThrow(/queue\.minFreeDisk.*under 100%/s)
  })
})

describe('the watermark on a volume', () => {
  it('takes a size as written and a percentage of the volume', () => {
    expect(minFreeBytes({ bytes: 100 * MiB }, 10 * GiB)).toBe(100 * MiB)
    expect(minFreeBytes({ percent: 10 }, 10 * GiB)).toBe(GiB)
  })

  it.each([
    // volume, default watermark: 5% capped at 1 GiB, never under 128 MiB or a quarter of a small volume
    ['a 24 MiB file system', 24 * MiB, 6 * MiB],
    ['a 256 MiB volume', 256 * MiB, 64 * MiB],
    ['a 1 GiB volume', GiB, 128 * MiB],
    ['an 8 GB SD card', 8e9, Math.floor(0.05 * 8e9)],
    ['a 64 GB SD card', 64e9, GiB],
    ['a 2 TB disk', 2e12, GiB],
  ])('defaults sensibly on %s', (_, total, expected) => {
    expect(minFreeBytes(undefined, total)).toBe(expected)
    // The log, a flush and a compaction (about six write buffers) fit in what it keeps free.
    expect(writeBufferFor(total) * 6).toBeLessThanOrEqual(minFreeBytes(undefined, total))
  })
})

describe('DiskSpace', () => {
  it('reads the real volume, and counts written bytes against it until the next reading', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'binge-disk-'))
    try {
      const free = fs.statfsSync(dir).bavail * fs.statfsSync(dir).bsize
      const changes: DiskState[] = []
      // Half the free space as the watermark, so other writers on this volume cannot sway it.
      const disk = new DiskSpace({ dir, minFree: { bytes: Math.floor(free / 2) }, intervalMs: 60_000, onChange: (s) => changes.push(s) })
      await disk.start()
      try {
        expect(disk.belowWatermark).toBe(false)
        expect(disk.state().totalBytes).toBeGreaterThan(0)
        disk.noteWritten(Math.ceil(free * 0.6))
        // Judged at once on the estimate, with no statfs on the way.
        expect(disk.belowWatermark).toBe(true)
        expect(changes).toHaveLength(1)
        expect(changes[0]!.belowWatermark).toBe(true)
        // A reading shows the bytes were never written: above the watermark again, said once.
        await disk.refresh()
        expect(disk.belowWatermark).toBe(false)
        expect(changes.map((c) => c.belowWatermark)).toEqual([true, false])
      } finally {
        disk.stop()
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it('recognizes a full disk in the errors LevelDB and Node give', () => {
    expect(isDiskFull(Object.assign(new Error('IO error: /d/000011.ldb: No space left on device'), { code: 'LEVEL_IO_ERROR' }))).toBe(true)
    expect(isDiskFull(Object.assign(new Error('write failed'), { code: 'ENOSPC' }))).toBe(true)
    expect(isDiskFull(new Error('Database failed to open', { cause: new Error('IO error: x.ldb: No space left on device') }))).toBe(true)
    expect(isDiskFull(Object.assign(new Error('IO error: x.log: Input/output error'), { code: 'LEVEL_IO_ERROR' }))).toBe(false)
  })
})

describe('a durable queue below the watermark', () => {
  it('refuses new events with 429 and Retry-After, takes resent handoffs, and goes on dequeuing and acking', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'binge-disk-queue-'))
    const open = async (minFreeDisk: { percent: number } | undefined) => {
      const q = new DurableQueue({ dir, sync: 'batch', maxEvents: 1e6, maxBytes: GiB, dedupeWindowMs: 60_000, minFreeDisk })
      await q.open()
      return q
    }
    const c = (queue: DurableQueue) => ({
      queue,
      highWaterMark: 1e6,
      maxEventBytes: 1 << 20,
      accepting: () => true,
      hasPipeline: () => true,
      onHandedIn: () => undefined,
    })
    // Made once per handoff id: a resend carries the very same events (their fingerprints match).
    const batches = new Map<string, object>()
    const batch = (id: string, ids: string[]) => {
      if (!batches.has(id)) batches.set(id, { v: 1, handoffId: id, kind: 'overflow', from: 'peer', events: ids.map((e) => event(e)) })
      return batches.get(id)!
    }
    let queue = await open(undefined)
    try {
      await queue.enqueue([event('a'), event('b')])
      expect(await receiveHandoff(batch('h1', ['h1-0', 'h1-1']), 'peer', c(queue))).toMatchObject({ status: 'accepted', accepted: 2 })
      expect(queue.diskStatus().belowWatermark).toBe(false)
      await queue.close()
      // 99.9% of the volume kept free: this volume is below it for certain.
      queue = await open({ percent: 99.9 })
      expect(queue.diskStatus()).toMatchObject({ belowWatermark: true, storeFaulted: false })
      const refused = await queue.enqueue([event('c')]).catch((err: unknown) => err)
      expect(refused).toBeInstanceOf(BingeError)
      expect(refused).toMatchObject({ code: 'BINGE_QUEUE_FULL', status: 429, retryAfter: 5 })
      expect((refused as Error).message).toMatch(/under queue\.minFreeDisk/)
      // A new overflow batch is refused; a resend of one it took is still taken (as a duplicate).
      expect(await receiveHandoff(batch('h2', ['h2-0']), 'peer', c(queue))).toEqual({
        status: 'refused',
        reason: 'its data volume is below queue.minFreeDisk',
      })
      const resent = await receiveHandoff(batch('h1', ['h1-0', 'h1-1']), 'peer', c(queue))
      expect(resent, JSON.stringify(resent)).toMatchObject({ status: 'accepted', accepted: 0, duplicates: 2 })
      // Processing goes on: that is what frees space.
      const taken = await queue.dequeue(10)
      expect(taken.map((e) => e.id)).toEqual(['a', 'b', 'h1-0', 'h1-1'])
      await queue.ackBatch(
        taken,
        taken.map(() => ({})),
      )
      expect(queue.depth()).toMatchObject({ unprocessed: 0, inflight: 0 })
    } finally {
      await queue.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('giving deleted events space back below the watermark (SpaceReclaimer)', () => {
  function reclaimer(low: boolean) {
    const calls: string[] = []
    let finish: () => void = () => {}
    const r = new SpaceReclaimer({
      compact: () => {
        calls.push('compact')
        return new Promise<void>((resolve) => {
          finish = resolve
        })
      },
      low: () => low,
      // A quarter of it: a compaction every 4 MiB deleted.
      minFreeBytes: () => 16 * MiB,
      refresh: async () => {
        calls.push('refresh')
      },
    })
    return { r, calls, finish: () => finish() }
  }

  it('compacts once a drain below the watermark has deleted enough or emptied the queue, one compaction at a time, then reads the volume', async () => {
    const { r, calls, finish } = reclaimer(true)
    r.deleted(MiB, false)
    expect(calls).toEqual([])
    r.deleted(3 * MiB, false)
    expect(calls).toEqual(['compact'])
    // Another drain while it runs starts nothing more.
    r.deleted(8 * MiB, true)
    expect(calls).toEqual(['compact'])
    finish()
    await r.idle()
    expect(calls).toEqual(['compact', 'refresh'])
    // An emptied queue compacts whatever little it deleted.
    r.deleted(1, true)
    expect(calls).toEqual(['compact', 'refresh', 'compact'])
    finish()
    await r.idle()
  })

  it('does nothing above the watermark: compactions follow writes there', () => {
    const { r, calls } = reclaimer(false)
    r.deleted(64 * MiB, true)
    expect(calls).toEqual([])
  })
})

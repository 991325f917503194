// Free space on the data volume, against `queue.minFreeDisk` (the flood-stage
// watermark, as Elasticsearch has it): below it the queue takes no new events, while
// processing and acks go on and free space. The hot path never makes a syscall: statfs
// runs on a timer and again after enough bytes were written, and in between the free
// space is estimated as the last reading minus what the queue wrote since.
import type { Level } from 'level'
import { statfs } from 'node:fs/promises'
import { dirname } from 'node:path'
import { BingeError } from '../../errors.js'
import type { SizeOrShare } from '../../util/size.js'

/** `queue.minFreeDisk` as configured: bytes, or a percentage of the volume; absent: the default rule. */
export type MinFreeDisk = SizeOrShare

export interface DiskState {
  freeBytes: number
  totalBytes: number
  /** The watermark in bytes on this volume. */
  minFreeBytes: number
  belowWatermark: boolean
}

const MiB = 2 ** 20
const GiB = 2 ** 30

/**
 * The watermark in bytes on a volume of `totalBytes`. The default is 5% of the volume
 * and at most 1 GiB, as Elasticsearch's flood stage (95% used, headroom capped), so a
 * big disk is not kept a fifth empty; but at least 128 MiB or a quarter of a small
 * volume, because LevelDB needs room of its own to write its log, flush it and compact
 * (about six write buffers, writeBufferFor), and that is what frees space as the
 * backlog drains: a compaction that runs out of space leaves files behind that only a
 * successful open deletes. On an 8 GB SD card that is 400 MB; on 24 MiB, 6 MiB.
 */
export function minFreeBytes(setting: MinFreeDisk | undefined, totalBytes: number): number {
  if (setting === undefined) {
    const share = Math.min(0.05 * totalBytes, GiB)
    return Math.floor(Math.max(share, Math.min(128 * MiB, totalBytes / 4)))
  }
  return 'bytes' in setting ? setting.bytes : Math.floor((setting.percent / 100) * totalBytes)
}

/**
 * LevelDB's write buffer for a volume: 16 MiB (measured the cheapest per event) but at
 * most a 32nd of a small volume, so that the log, its flush and a compaction (about six
 * buffers) fit in what the default watermark keeps free.
 */
export function writeBufferFor(totalBytes: number): number {
  return Math.floor(Math.max(512 * 2 ** 10, Math.min(16 * MiB, totalBytes / 32)))
}

/** statfs of `dir`, or of its nearest existing parent (the store's directory may not exist yet). */
export async function volumeOf(dir: string): Promise<{ freeBytes: number; totalBytes: number }> {
  for (let at = dir; ; at = dirname(at)) {
    try {
      const volume = await statfs(at)
      return { freeBytes: volume.bavail * volume.bsize, totalBytes: volume.blocks * volume.bsize }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(at) === at) throw err
    }
  }
}

export interface DiskSpaceOptions {
  dir: string
  minFree?: MinFreeDisk
  intervalMs?: number
  /** Called when the volume goes below the watermark or back above it. */
  onChange?: (state: DiskState) => void
  /** Called when statfs fails (the last reading stays in force). */
  onError?: (err: unknown) => void
}

export class DiskSpace {
  private reading = { freeBytes: Number.POSITIVE_INFINITY, totalBytes: 0 }
  private written = 0
  private minFree = 0
  private low = false
  private timer?: NodeJS.Timeout
  private refreshing?: Promise<void>

  constructor(private readonly options: DiskSpaceOptions) {}

  /** Read the volume once (so the first request is judged on a real reading), then every interval. */
  async start(): Promise<void> {
    await this.refresh()
    this.timer ??= setInterval(() => void this.refresh(), this.options.intervalMs ?? 1_000)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  get belowWatermark(): boolean {
    return this.low
  }

  state(): DiskState {
    return { freeBytes: this.estimate(), totalBytes: this.reading.totalBytes, minFreeBytes: this.minFree, belowWatermark: this.low }
  }

  /**
   * Count bytes the store just wrote. Once they could have used a quarter of the room
   * left above the watermark (or 1 MiB), read the volume again without waiting.
   */
  noteWritten(bytes: number): void {
    this.written += bytes
    this.update()
    const room = this.reading.freeBytes - this.minFree
    if (this.written > Math.max(MiB, room / 4)) void this.refresh()
  }

  /** Read the volume now; concurrent calls share one statfs. */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      const writtenBefore = this.written
      try {
        this.reading = await volumeOf(this.options.dir)
        this.minFree = minFreeBytes(this.options.minFree, this.reading.totalBytes)
        // What was written while statfs ran may not be in its answer: keep counting it.
        this.written -= writtenBefore
        this.update()
      } catch (err) {
        this.options.onError?.(err)
      } finally {
        this.refreshing = undefined
      }
    })()
    return this.refreshing
  }

  private estimate(): number {
    return Math.max(0, this.reading.freeBytes - this.written)
  }

  private update(): void {
    // Leaving takes 5% more than entering, so a volume hovering at the mark does not
    // flap between the two states (and the log says each once).
    const low = this.estimate() < (this.low ? this.minFree * 1.05 : this.minFree)
    if (low === this.low) return
    this.low = low
    this.options.onChange?.(this.state())
  }
}

/** Below the watermark: 429 (BINGE_QUEUE_FULL), so ingest tries a peer, as at the hard cap. */
export function lowDiskError(d: DiskState): BingeError {
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`
  return new BingeError(
    'BINGE_QUEUE_FULL',
    `the data volume has ${mib(d.freeBytes)} free, under queue.minFreeDisk (${mib(d.minFreeBytes)}): no new events until the backlog drains`,
    {
      retryAfter: 5,
      details: { freeBytes: d.freeBytes, minFreeBytes: d.minFreeBytes },
    },
  )
}

/** LevelDB's compaction of [gte, lt): `level` is classic-level in Node, whose types leave compactRange out. */
export function compactRange(db: Level<string, string>, gte: string, lt: string): Promise<void> {
  return (db as Level<string, string> & { compactRange(start: string, end: string): Promise<void> }).compactRange(gte, lt)
}

export interface ReclaimOptions {
  /** Compact the ranges where events were deleted (LevelDB frees their space only then). */
  compact(): Promise<void>
  /** Is the volume below the watermark now? */
  low(): boolean
  /** The free space the volume is to keep (queue.minFreeDisk in bytes). */
  minFreeBytes(): number
  /** Read the volume again. */
  refresh(): Promise<void>
  onError?: (err: unknown) => void
}

/**
 * Gives the space of deleted events back while the volume is below the watermark.
 * LevelDB frees a deleted event's bytes only when a compaction rewrites its file, and
 * compactions follow writes: a node that drains its backlog below the watermark writes
 * only small deletes, so its files kept their dead bytes and the node kept answering
 * 429 with nothing queued (seen: 19 MB of a drained queue on a 24 MiB volume for 30 s).
 * So once a drain has deleted a quarter of the free space kept (4 MiB at least: often
 * enough to matter, seldom on a big volume), or emptied the queue, while low, the
 * queue's ranges are compacted, one compaction at a time, and the volume read again.
 */
export class SpaceReclaimer {
  private deletedBytes = 0
  private running?: Promise<void>

  constructor(private readonly options: ReclaimOptions) {}

  /** `bytes` of events were just deleted; `empty`: nothing is queued any more. */
  deleted(bytes: number, empty: boolean): void {
    this.deletedBytes += bytes
    const every = Math.max(4 * MiB, this.options.minFreeBytes() / 4)
    if (this.running || !this.options.low() || (!empty && this.deletedBytes < every)) return
    this.deletedBytes = 0
    this.running = this.options
      .compact()
      .then(() => this.options.refresh())
      .catch((err: unknown) => this.options.onError?.(err))
      .finally(() => {
        this.running = undefined
      })
  }

  /** Resolves once no compaction of ours runs (before the store closes). */
  async idle(): Promise<void> {
    await this.running
  }
}

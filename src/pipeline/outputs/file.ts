// file: appends one JSON line per record and fsyncs before the write resolves, so an
// acked event's line survives a crash. Concurrent writes from several workers share
// one append and one fsync (group commit). The file is opened on first use and again
// after a failure, so a missing directory or full disk is a retryable failure, not a
// node that cannot start.
// Rotation (`rotateBytes`): before a line would take the file past the size, the file
// (already fsync'd) is renamed to `<path>.<n>`, n one more than the highest there, and
// a new one is started; a line is never split, and one longer than the size gets a
// file of its own. A crash between the rename and the next write loses nothing.
import { mkdir, open, readdir, rename, type FileHandle } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import type { z } from 'zod'
import { bool, strict, text } from '../../schema/fields.js'
import { sizeSchema } from '../../util/size.js'
import { GroupCommit } from '../../queue/group-commit.js'
import type { OutputEntry } from '../registry-types.js'
import type { Output } from '../types.js'

export interface FileOutputOptions {
  path: string
  /** Rotate before the file would pass this many bytes. */
  rotateBytes?: number
}

/**
 * Open for appending, first cutting a torn last line (a crash mid-write) back to the
 * last newline: that line was never fsync'd and acked, and left there it would glue
 * itself to the next line written.
 */
async function openForAppend(path: string): Promise<FileHandle> {
  await mkdir(dirname(path), { recursive: true })
  const handle = await open(path, 'a+')
  try {
    const { size } = await handle.stat()
    if (size > 0) {
      const tailSize = Math.min(size, 1 << 20)
      const tail = Buffer.alloc(tailSize)
      await handle.read(tail, 0, tailSize, size - tailSize)
      if (tail[tailSize - 1] !== 0x0a) {
        const lastNewline = tail.lastIndexOf(0x0a)
        // No newline in the last MiB: a torn line longer than that, or a whole file of one; cut it all.
        await handle.truncate(lastNewline < 0 ? (tailSize === size ? 0 : size - tailSize) : size - tailSize + lastNewline + 1)
        await handle.datasync()
      }
    }
    return handle
  } catch (err) {
    await handle.close().catch(() => {})
    throw err
  }
}

/** The highest `n` of the `<path>.<n>` files next to `path` (0 when none). */
async function lastRotation(path: string): Promise<number> {
  const prefix = `${basename(path)}.`
  let highest = 0
  for (const name of await readdir(dirname(path))) {
    if (!name.startsWith(prefix)) continue
    const suffix = name.slice(prefix.length)
    if (/^\d+$/.test(suffix)) highest = Math.max(highest, Number(suffix))
  }
  return highest
}

/** fsync a directory, so a rename in it survives a power loss. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

export function createFileOutput(options: FileOutputOptions): Output {
  const { path, rotateBytes } = options
  let handle: FileHandle | undefined
  let size = 0
  let rotation: number | undefined

  const ensureOpen = async (): Promise<FileHandle> => {
    if (!handle) {
      handle = await openForAppend(path)
      size = (await handle.stat()).size
    }
    return handle
  }

  const append = async (text: string): Promise<void> => {
    const h = await ensureOpen()
    await h.appendFile(text) // loops over short writes; write() would drop the rest silently
    await h.datasync()
    size += Buffer.byteLength(text)
  }

  const rotate = async (): Promise<void> => {
    const old = handle
    handle = undefined
    await old?.close()
    rotation = (rotation ?? (await lastRotation(path))) + 1
    await rename(path, `${path}.${rotation}`)
    await syncDir(dirname(path))
    size = 0
  }

  const writeLines = async (lines: string[]): Promise<void> => {
    try {
      if (rotateBytes === undefined) return await append(lines.join(''))
      await ensureOpen()
      let chunk = ''
      let chunkBytes = 0
      for (const line of lines) {
        const bytes = Buffer.byteLength(line)
        if (size + chunkBytes + bytes > rotateBytes && size + chunkBytes > 0) {
          if (chunkBytes > 0) await append(chunk)
          await rotate()
          chunk = ''
          chunkBytes = 0
        }
        chunk += line
        chunkBytes += bytes
      }
      if (chunkBytes > 0) await append(chunk)
    } catch (err) {
      const broken = handle
      handle = undefined
      await broken?.close().catch(() => {})
      throw err
    }
  }
  // One append and one fsync for every writer waiting meanwhile; a failure fails them all.
  const commit = new GroupCommit<string[], void>(async (groups) => {
    await writeLines(groups.flat())
    return groups.map(() => ({ ok: true as const, value: undefined }))
  })
  return {
    kind: 'file',
    async write(records) {
      await commit.submit(records.map((r) => `${JSON.stringify(r)}\n`))
    },
    async stop() {
      await commit.drain()
      await handle?.close()
      handle = undefined
    },
  }
}

const schema = strict({
  path: text().min(1, 'expected a file path').describe('the file to append to; relative to the working directory'),
  envelope: bool().default(true).describe('write the envelope; false: the event data alone'),
  rotateBytes: sizeSchema.optional().describe('rename the file to `<path>.<n>` before it would pass this size'),
})

export type FileOutputConfig = z.output<typeof schema>

export const fileOutput: OutputEntry<FileOutputConfig> = {
  name: 'file',
  summary: "Appends one JSON line per event to a file, fsync'd before the event is acked; optional size-based rotation.",
  schema,
  create: (config) => createFileOutput({ path: config.path, rotateBytes: config.rotateBytes }),
}

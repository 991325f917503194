// file: appends one JSON line per record and fsyncs before the write resolves, so an
// acked event's line survives a crash. Concurrent writes from several workers share
// one append and one fsync (group commit). The file is opened on first use and again
// after a failure, so a missing directory or full disk is a retryable failure, not a
// node that cannot start.
import { mkdir, open, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { GroupCommit } from '../../util/group-commit.js'
import type { Output } from '../types.js'

export interface FileOutputOptions {
  path: string
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

export function createFileOutput(options: FileOutputOptions): Output {
  let handle: FileHandle | undefined
  const commit = new GroupCommit<string>(async (lines) => {
    try {
      handle ??= await openForAppend(options.path)
      await handle.appendFile(lines.join('')) // loops over short writes; write() would drop the rest silently
      await handle.datasync()
    } catch (err) {
      const broken = handle
      handle = undefined
      await broken?.close().catch(() => {})
      throw err
    }
  })
  return {
    kind: 'file',
    async write(records) {
      await commit.submit(records.map((r) => JSON.stringify(r) + '\n'))
    },
    async stop() {
      await commit.drained()
      await handle?.close()
      handle = undefined
    },
  }
}

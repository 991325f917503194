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

export function createFileOutput(options: FileOutputOptions): Output {
  let handle: FileHandle | undefined
  const commit = new GroupCommit<string>(async (lines) => {
    try {
      if (!handle) {
        await mkdir(dirname(options.path), { recursive: true })
        handle = await open(options.path, 'a')
      }
      await handle.write(lines.join(''))
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

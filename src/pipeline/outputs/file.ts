// file: appends one JSON line per record and fsyncs before the write resolves, so an
// acked event's line survives a crash. Concurrent writes from several workers share
// one append and one fsync (group commit).
import { mkdir, open, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { BingeError } from '../../errors.js'
import { GroupCommit } from '../../util/group-commit.js'
import type { Output } from '../types.js'

export interface FileOutputOptions {
  path: string
}

export function createFileOutput(options: FileOutputOptions): Output {
  let handle: FileHandle | undefined
  const commit = new GroupCommit<string>(async (lines) => {
    if (!handle) throw new BingeError('BINGE_OUTPUT_FAILED', `file output ${options.path} is not open`)
    await handle.write(lines.join(''))
    await handle.datasync()
  })
  return {
    kind: 'file',
    async start() {
      await mkdir(dirname(options.path), { recursive: true })
      handle = await open(options.path, 'a')
    },
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

// stdout: one JSON line per record on the process's standard output. Resolves when
// the stream has taken the data, so a piped reader that stalls applies backpressure.
import type { z } from 'zod'
import { bool, section, strict } from '../../schema/fields.js'
import type { OutputEntry } from '../registry-types.js'
import type { Output } from '../types.js'

const schema = section(
  strict({
    envelope: bool().default(true).describe('write the envelope; false: the event data alone'),
  }),
)

export type StdoutOutputConfig = z.output<typeof schema>

export function createStdoutOutput(stream: NodeJS.WritableStream = process.stdout): Output {
  return {
    kind: 'stdout',
    write(records) {
      const text = records.map((r) => `${JSON.stringify(r)}\n`).join('')
      return new Promise<void>((resolve, reject) => {
        stream.write(text, (err) => (err ? reject(err) : resolve()))
      })
    },
  }
}

export const stdoutOutput: OutputEntry<StdoutOutputConfig> = {
  name: 'stdout',
  summary: 'Writes one JSON line per event to standard output (logs go to stderr).',
  schema,
  create: () => createStdoutOutput(),
}

// stdout: one JSON line per record on the process's standard output. Resolves when
// the stream has taken the data, so a piped reader that stalls applies backpressure.
import type { Output } from '../types.js'

export function createStdoutOutput(stream: NodeJS.WritableStream = process.stdout): Output {
  return {
    kind: 'stdout',
    write(records) {
      const text = records.map((r) => JSON.stringify(r) + '\n').join('')
      return new Promise<void>((resolve, reject) => {
        stream.write(text, (err) => (err ? reject(err) : resolve()))
      })
    },
  }
}

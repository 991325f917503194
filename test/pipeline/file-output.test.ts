import { afterEach, describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createFileOutput } from '../../src/pipeline/outputs/file.js'

const dirs: string[] = []
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'binge-file-'))
  dirs.push(dir)
  return dir
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe('file output', () => {
  it('writes one JSON line per record and shares one append among concurrent writers', async () => {
    const path = join(tempDir(), 'deep', 'out.jsonl')
    const out = createFileOutput({ path })
    await Promise.all(Array.from({ length: 20 }, (_, i) => out.write([{ i }])))
    await out.stop?.()
    const lines = readFileSync(path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l).i)
    expect(lines.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i))
  })

  it.each([
    ['a torn line after whole ones', '{"a":1}\n{"id":"torn","pip', '{"a":1}\n{"b":2}\n'],
    ['a file of one torn line', '{"id":"to', '{"b":2}\n'],
    ['a whole file', '{"a":1}\n', '{"a":1}\n{"b":2}\n'],
  ])('cuts %s back to the last newline before appending', async (_name, before, after) => {
    const path = join(tempDir(), 'out.jsonl')
    writeFileSync(path, before)
    const out = createFileOutput({ path })
    await out.write([{ b: 2 }])
    await out.stop?.()
    expect(readFileSync(path, 'utf8')).toBe(after)
  })
})

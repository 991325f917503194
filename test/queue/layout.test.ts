// The queue's folders (docs/design.md §4): everything that knows LevelDB lives in
// src/queue/durable/, the rest of src/queue is backend-neutral and never imports it,
// and the rest of src reaches the durable queue through src/queue/index.ts alone. So
// the memory backend cannot come to depend on the store's key layout again.

import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const src = fileURLToPath(new URL('../../src', import.meta.url))
const queue = path.join(src, 'queue')
const durable = path.join(queue, 'durable')

function sources(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => path.join(dir, file))
}

/** Every module a file imports: bare names as written, relative ones as absolute paths. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8')
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]/g)].map(([, spec]) =>
    spec!.startsWith('.') ? path.resolve(path.dirname(file), spec!) : spec!,
  )
}

const inside = (file: string, dir: string): boolean => file.startsWith(dir + path.sep)
const rel = (file: string): string => path.relative(src, file)

describe('queue layout', () => {
  it('only modules in src/queue/durable/ import level', () => {
    const users = sources(src).filter((file) => importsOf(file).includes('level'))
    expect(users.length).toBeGreaterThan(0)
    expect(users.filter((file) => !inside(file, durable)).map(rel)).toEqual([])
  })

  it('backend-neutral queue modules never import from durable/, except the entry point', () => {
    const neutral = sources(queue).filter((file) => !inside(file, durable) && path.basename(file) !== 'index.ts')
    const offenders = neutral.filter((file) => importsOf(file).some((spec) => inside(spec, durable)))
    expect(offenders.map(rel)).toEqual([])
  })

  it('the rest of src never imports from durable/ (it makes a queue with createQueue, index.ts)', () => {
    const outside = sources(src).filter((file) => !inside(file, queue))
    const offenders = outside.flatMap((file) =>
      importsOf(file).flatMap((spec) => (inside(spec, durable) ? [`${rel(file)} -> ${rel(spec)}`] : [])),
    )
    expect(offenders).toEqual([])
  })
})

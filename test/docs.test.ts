// docs/config.md is generated from the same schemas that validate config (the step and
// output registry plus the top-level sections): the committed file must be exactly a
// fresh rendering, so a schema change without `npm run docs` fails here.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { outputSchemas, stepSchemas } from '../src/config/index.js'
import { renderConfigReference } from '../src/config/reference.js'
import { outputEntries, stepEntries } from '../src/pipeline/registry.js'

const committed = () => readFileSync(new URL('../docs/config.md', import.meta.url), 'utf8')

describe('docs/config.md', () => {
  it('is what `npm run docs` generates from the schemas today', () => {
    // Not toBe on the whole text: a diff of the first differing line says what to regenerate.
    const fresh = renderConfigReference().split('\n')
    const current = committed().split('\n')
    const first = fresh.findIndex((line, i) => line !== current[i])
    const where = first < 0 ? current.length : first
    expect(current[where], `docs/config.md is out of date at line ${where + 1}: run \`npm run docs\``).toBe(fresh[where])
    expect(current.length).toBe(fresh.length)
  })

  it('documents every step and output kind with its summary, and the top-level sections', () => {
    const text = renderConfigReference()
    for (const e of [...stepEntries, ...outputEntries]) {
      expect(text).toContain(`### \`${e.name}\`\n\n${e.summary}\n`)
    }
    for (const section of ['node', 'http', 'queue', 'log', 'mesh', 'pipelines.<name>']) expect(text).toContain(`### \`${section}\``)
    expect(text).toMatch(/\| `workers` \| whole number from 1 to 1024 \| `4` \|/)
    expect(text).toMatch(/\| `timeout` \| duration \| `5s` \|/)
    expect(text).toMatch(/\| `rotateBytes` \| size \| {2}\|/)
  })
})

describe('the registry', () => {
  it('gives each kind a name, a one-line summary, a schema and a factory; validation uses the same schemas', () => {
    for (const [entries, schemas] of [
      [stepEntries, stepSchemas],
      [outputEntries, outputSchemas],
    ] as const) {
      expect(new Set(entries.map((e) => e.name)).size).toBe(entries.length)
      for (const e of entries) {
        expect(e.name).toMatch(/^[a-z][a-zA-Z]*$/)
        expect(e.summary).toMatch(/^[A-Z].*\.$/)
        expect(e.summary).not.toContain('\n')
        expect(typeof e.create).toBe('function')
        expect(schemas[e.name]).toBe(e.schema)
      }
    }
    expect(outputEntries.map((e) => e.name)).toEqual(['stdout', 'file', 'http', 'forward', 'mqtt', 'nats', 'redis'])
    expect(stepEntries.map((e) => e.name)).toEqual(expect.arrayContaining(['filter', 'map']))
  })
})

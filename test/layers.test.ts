// The folders of src/ import each other one way only (scripts/check-layers.mjs): a
// cycle between folders type-checks, then can crash a node at load with "Cannot access
// 'x' before initialization". The checker itself is checked on a graph with a cycle.
import { describe, expect, it } from 'vitest'
// @ts-expect-error: a plain .mjs script, without types
import { layerCycles, layerGraph } from '../scripts/check-layers.mjs'

type Graph = Map<string, Map<string, string>>

describe('layers', () => {
  it('no two folders of src/ import each other, directly or around a circle', () => {
    const cycles = (layerCycles as (g?: Graph) => string[][])()
    expect(cycles, cycles.map((c) => c.join(' ; ')).join('\n')).toEqual([])
  })

  it('sees the config -> pipeline -> config cycle the schema builders once made, and longer ones', () => {
    const edges = (pairs: Array<[string, string]>): Graph => {
      const g: Graph = new Map()
      for (const [a, b] of pairs) {
        if (!g.has(a)) g.set(a, new Map())
        g.get(a)!.set(b, `${a}/x.ts -> ../${b}/y.js`)
      }
      return g
    }
    const find = layerCycles as (g: Graph) => string[][]
    expect(
      find(
        edges([
          ['config', 'pipeline'],
          ['pipeline', 'config'],
        ]),
      ),
    ).toHaveLength(1)
    expect(
      find(
        edges([
          ['cli', 'node'],
          ['node', 'http'],
          ['http', 'queue'],
          ['queue', 'node'],
        ]),
      ),
    ).toHaveLength(1)
    expect(
      find(
        edges([
          ['cli', 'config'],
          ['config', 'pipeline'],
          ['pipeline', 'schema'],
          ['config', 'schema'],
        ]),
      ),
    ).toEqual([])
    // The real graph has edges at all (the import pattern still matches this code base).
    expect((layerGraph as () => Graph)().get('config')?.has('schema')).toBe(true)
  })
})

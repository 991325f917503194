#!/usr/bin/env node
// Fails when the folders of src/ import each other in a circle. A reader must find where
// an event goes next by following imports downward, and a cycle between folders is how a
// module ends up used before it is initialised ("Cannot access 'x' before
// initialization" at load, after type-checking fine). Type-only imports count too: they
// are how the next runtime import sneaks in. Files at the top of src/ (node.ts, errors.ts,
// ...) each count as a folder of their own. Prints the cycles and exits 1, else exits 0.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src')

function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) yield* files(path)
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) yield path
  }
}

/** The layer of a file: its first folder under src/, or its own name at the top. */
function layerOf(file) {
  const parts = relative(root, file).split(sep)
  return parts.length === 1 ? parts[0].replace(/\.ts$/, '') : parts[0]
}

const importPattern = /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g

/** layer -> layer -> an example "file -> imported file" edge, for the message. */
export function layerGraph() {
  const graph = new Map()
  for (const file of files(root)) {
    const text = readFileSync(file, 'utf8')
    for (const m of text.matchAll(importPattern)) {
      const spec = m[1] ?? m[2]
      const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'))
      if (!target.startsWith(root + sep)) continue
      const from = layerOf(file)
      const to = layerOf(target)
      if (from === to) continue
      if (!graph.has(from)) graph.set(from, new Map())
      if (!graph.get(from).has(to)) graph.get(from).set(to, `${relative(root, file)} -> ${spec}`)
    }
  }
  return graph
}

/** Every cycle between layers, each as a list of edges, found by DFS from each layer. */
export function layerCycles(graph = layerGraph()) {
  const cycles = new Map()
  const visit = (start, node, path, seen) => {
    for (const [next, edge] of graph.get(node) ?? []) {
      const step = [...path, `${node} -> ${next} (${edge})`]
      if (next === start) {
        const key = [...step]
          .map((s) => s.split(' ')[0])
          .sort()
          .join(',')
        if (!cycles.has(key)) cycles.set(key, step)
      } else if (!seen.has(next)) {
        visit(start, next, step, new Set([...seen, next]))
      }
    }
  }
  for (const layer of graph.keys()) visit(layer, layer, [], new Set([layer]))
  return [...cycles.values()]
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const cycles = layerCycles()
  if (cycles.length === 0) {
    process.stdout.write('no import cycles between the folders of src/\n')
  } else {
    process.stderr.write(`${cycles.length} import cycle(s) between the folders of src/:\n`)
    for (const c of cycles) process.stderr.write(`  ${c.join('\n    ')}\n`)
    process.exitCode = 1
  }
}

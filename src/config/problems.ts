// What a bad config looks like to its author: every problem, each with the place it
// sits in the file. Problems carry a dotted path (`pipelines.alerts.steps[1].filter`)
// and, when the document can tell, a 1-based line and column.

import { isMap, isPair, isScalar, type Document, type LineCounter, type Node } from 'yaml'
import type { z } from 'zod'

export interface ConfigProblem {
  path: string
  message: string
  line?: number
  column?: number
}

export type PathSegment = string | number

/** A problem found before it has been placed in the file. */
export interface RawProblem {
  path: PathSegment[]
  message: string
  /** Offset in the source text, when already known (YAML syntax errors). */
  offset?: number
  /** Point at the key itself rather than its value (unknown keys). */
  atKey?: boolean
}

// Keys that read well bare in a dotted path; others (`a.b`, `x y`) are quoted.
const bareKey = /^[A-Za-z0-9_][A-Za-z0-9_-]*$/

export function formatPath(path: readonly PathSegment[]): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else if (bareKey.test(seg)) out += out === '' ? seg : `.${seg}`
    else out += `[${JSON.stringify(seg)}]`
  }
  return out
}

/** One line per problem: `file:line:col path: message`, the form editors can jump to. */
export function formatProblems(file: string, problems: readonly ConfigProblem[]): string {
  return problems
    .map((p) => {
      const where = p.line === undefined ? file : `${file}:${p.line}:${p.column ?? 1}`
      return p.path === '' ? `${where} ${p.message}` : `${where} ${p.path}: ${p.message}`
    })
    .join('\n')
}

/** Zod issues as raw problems: unknown keys split one per key, record-key issues unwrapped. */
export function fromZodIssues(issues: readonly z.core.$ZodIssue[]): RawProblem[] {
  const out: RawProblem[] = []
  for (const issue of issues) {
    const path = issue.path.filter((s): s is PathSegment => typeof s !== 'symbol')
    if (issue.code === 'unrecognized_keys') {
      // The strict-object helper puts the known keys in the message (see fields.ts).
      const hint = issue.message.startsWith('known: ') ? `; ${issue.message}` : ''
      for (const key of issue.keys) {
        out.push({ path: [...path, key], message: `unknown key "${key}"${hint}`, atKey: true })
      }
    } else if (issue.code === 'invalid_key') {
      const inner = issue.issues.map((i) => i.message).join('; ')
      out.push({ path, message: inner || issue.message, atKey: true })
    } else {
      out.push({ path, message: issue.message })
    }
  }
  return out
}

/**
 * Place raw problems in the file. A path that does not exist in the document (a
 * missing required key) is placed at its nearest ancestor that does.
 */
export function placeProblems(raw: readonly RawProblem[], doc: Document, lines: LineCounter): ConfigProblem[] {
  const placed = raw.map((p) => {
    const offset = p.offset ?? offsetOf(doc, p.path, p.atKey ?? false)
    const problem: ConfigProblem = { path: formatPath(p.path), message: p.message }
    if (offset !== undefined) {
      const pos = lines.linePos(offset)
      problem.line = pos.line
      problem.column = pos.col
    }
    return problem
  })
  // Stable sort: file order, which is how the author reads them; unplaced ones last.
  const key = (p: ConfigProblem) => (p.line ?? Infinity) * 1e6 + (p.column ?? 0)
  return dedupe(placed).sort((a, b) => key(a) - key(b))
}

function offsetOf(doc: Document, path: readonly PathSegment[], atKey: boolean): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const prefix = path.slice(0, n)
    if (atKey && n === path.length && n > 0) {
      const keyNode = keyNodeOf(doc, prefix)
      if (keyNode?.range) return keyNode.range[0]
      continue
    }
    const node = n === 0 ? doc.contents : doc.getIn(prefix, true)
    if (isNodeWithRange(node)) return node.range[0]
  }
  return undefined
}

function keyNodeOf(doc: Document, path: readonly PathSegment[]): Node | undefined {
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true)
  if (!isMap(parent)) return undefined
  const last = String(path[path.length - 1])
  for (const pair of parent.items) {
    if (isPair(pair) && isScalar(pair.key) && String(pair.key.value) === last) return pair.key
  }
  return undefined
}

function isNodeWithRange(node: unknown): node is Node & { range: [number, number, number] } {
  return typeof node === 'object' && node !== null && Array.isArray((node as Node).range)
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>()
  return problems.filter((p) => {
    const k = `${p.path}\u0000${p.message}`
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}

// `${VAR}` and `${VAR:-default}` in config values, read from the environment. It
// works on the parsed YAML document, one string scalar at a time, so a value can
// never change the document's structure or break its quoting; `$${` is a literal `${`.

import { isMap, isPair, isScalar, isSeq, type Document } from 'yaml'
import type { PathSegment, RawProblem } from './problems.js'

export type Env = Readonly<Record<string, string | undefined>>

// `$${` first so an escaped reference is never read as one; a lone `${` is unterminated.
const reference = /\$\$\{|\$\{([^}]*)\}|\$\{/g
const inner = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/

/** Expand references in one string; what cannot be expanded is returned as problems. */
export function expandEnv(text: string, env: Env): { value: string; problems: string[] } {
  const problems: string[] = []
  const value = text.replace(reference, (match, body: string | undefined) => {
    if (match === '$${') return '${'
    if (body === undefined) {
      problems.push('unterminated "${": close it with "}", or write "$${" for a literal "${"')
      return match
    }
    const m = inner.exec(body)
    if (!m) {
      problems.push(`bad variable reference "${match}": write \${NAME} or \${NAME:-default}`)
      return match
    }
    const name = m[1]!
    const fallback = m[2]
    const set = env[name]
    // As in the shell, `:-` also covers a variable that is set but empty.
    if (fallback !== undefined) return set === undefined || set === '' ? fallback : set
    if (set === undefined) {
      problems.push(`environment variable ${name} is not set (write \${${name}:-} to allow it to be empty)`)
      return ''
    }
    return set
  })
  return { value, problems }
}

/**
 * Substitute in every string value of `doc`, in place. Map keys are left alone: they
 * are the config's structure, not its data. Returns the problems with their paths.
 */
export function substituteEnv(doc: Document, env: Env): RawProblem[] {
  const problems: RawProblem[] = []
  const walk = (node: unknown, path: PathSegment[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key)
        walk(pair.value, [...path, key])
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        walk(item, [...path, i])
      })
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('${')) {
      const { value, problems: found } = expandEnv(node.value, env)
      node.value = value
      for (const message of found) problems.push({ path, message, offset: node.range?.[0] })
    }
  }
  walk(doc.contents, [])
  return problems
}

// The checks every event passes at every door (HTTP, `binge run`, a mesh handoff, and
// any input to come), once, here: it is a JSON object, nests at most 64 levels, has no
// key that could poison a prototype if a later merge copied it (__proto__, constructor),
// holds only numbers that survive a JSON round trip, and fits the door's size limit.
// The walk is iterative (a hostile event cannot overflow the stack) and builds no path
// strings on the way: only a failure pays for finding where it is.
import { BingeError } from '../errors.js'
import type { JsonObject } from '../queue/types.js'

export const maxDepth = 64
const forbiddenKeys = new Set(['__proto__', 'constructor'])

/** What went wrong, for a door that words its errors its own way (binge run's `file:line`). */
export type EventProblemKind = 'empty' | 'syntax' | 'not-object' | 'shape' | 'too-large' | 'too-many'

export interface EventProblem {
  kind: EventProblemKind
  /** The line of an NDJSON payload (or of the JSON syntax error), from 1. */
  line?: number
  /** The index of an item of a JSON array, from 0. */
  item?: number
  /** For not-object: what the value was instead ("a number", "null", ...). */
  found?: string
}

/**
 * A 400 (or 413) whose message says what and where; `problem` names the same in fields,
 * so a door can reword it. Renders like any BingeError: the fields stay off the wire.
 */
export class EventInputError extends BingeError {
  constructor(
    message: string,
    readonly problem: EventProblem,
  ) {
    super(problem.kind === 'too-large' || problem.kind === 'too-many' ? 'BINGE_PAYLOAD_TOO_LARGE' : 'BINGE_BAD_REQUEST', message)
  }
}

export function kindOf(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value
}

/** Where the problem is, for the message and for `EventProblem`: `line 2` / `item [3]` / `the body`. */
export interface EventPlace {
  label: string
  line?: number
  item?: number
}

/**
 * `value` as an event, or an EventInputError naming `place` and the path inside it.
 * `maxBytes`: refuse an event whose JSON is larger (a door whose payload size does not
 * already bound it, such as a handoff batch of many events).
 */
export function checkEvent(value: unknown, place: EventPlace, maxBytes?: number): JsonObject {
  const where = { line: place.line, item: place.item }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const found = kindOf(value)
    throw new EventInputError(`${place.label} is ${found}; an event must be a JSON object`, { kind: 'not-object', found, ...where })
  }
  const problem = findProblem(value)
  if (problem) throw new EventInputError(`${place.label}${pathTo(value, problem.at)} ${problem.what}`, { kind: 'shape', ...where })
  if (maxBytes !== undefined) {
    const bytes = Buffer.byteLength(JSON.stringify(value))
    if (bytes > maxBytes)
      throw new EventInputError(`${place.label} is ${bytes} bytes of JSON, more than the ${maxBytes} one event may be here`, {
        kind: 'too-large',
        ...where,
      })
  }
  return value as JsonObject
}

/** The place of a problem: the container holding it, and the key or index in it (none: the container itself). */
interface Found {
  at: { container: object; key?: string | number }
  what: string
}

function findProblem(root: object): Found | undefined {
  const stack: Array<[object, number]> = [[root, 1]]
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!
    if (depth > maxDepth) return { at: { container: node }, what: `nests deeper than ${maxDepth} levels` }
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const item: unknown = node[i]
        if (typeof item === 'object' && item !== null) stack.push([item, depth + 1])
        else if (typeof item === 'number' && !Number.isFinite(item)) return { at: { container: node, key: i }, what: outOfRange }
      }
      continue
    }
    for (const key of Object.keys(node)) {
      if (forbiddenKeys.has(key)) return { at: { container: node }, what: `has the key "${key}", which is not allowed` }
      const item: unknown = (node as JsonObject)[key]
      if (typeof item === 'object' && item !== null) stack.push([item, depth + 1])
      else if (typeof item === 'number' && !Number.isFinite(item)) return { at: { container: node, key }, what: outOfRange }
    }
  }
  return undefined
}

// JSON.parse reads 1e400 as Infinity, which JSON.stringify would store as null.
const outOfRange = 'is a number too large for a double (it would be stored as null); send it as a string'

/** `.a.b[2]` from `root` to the found place: a second walk, paid only on a failure. */
function pathTo(root: object, at: Found['at']): string {
  const stack: Array<[object, string]> = [[root, '']]
  while (stack.length > 0) {
    const [node, path] = stack.pop()!
    if (node === at.container) return at.key === undefined ? path : path + step(at.key)
    for (const [key, child] of Array.isArray(node) ? node.map((v, i) => [i, v] as const) : Object.entries(node)) {
      if (typeof child === 'object' && child !== null) stack.push([child, path + step(key)])
    }
  }
  return ''
}

const step = (key: string | number): string => (typeof key === 'number' ? `[${key}]` : `.${key}`)

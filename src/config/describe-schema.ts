// Reads a config schema back as documentation: each field's path, type, default and
// description. Types are taken from what the schema itself says when it refuses a
// value ("expected a whole number 1 or more, got ..."), so a field documents exactly
// what validation accepts, with no second list of type names to keep in step.
import { z } from 'zod'
import { durationSchema } from '../util/duration.js'
import { sizeSchema } from '../util/size.js'

export interface FieldDoc {
  /** Dotted path below the schema documented (`retry.attempts`); '' for the value itself. */
  path: string
  type: string
  /** The default as written in a config (`5s`, `1GiB`, `true`); undefined when none. */
  default?: string
  required: boolean
  description?: string
}

type Def = {
  type: string
  innerType?: z.ZodType
  in?: z.ZodType
  out?: z.ZodType
  shape?: Record<string, z.ZodType>
  element?: z.ZodType
  valueType?: z.ZodType
  defaultValue?: unknown
}

const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def

interface Unwrapped {
  base: z.ZodType
  default?: unknown
  hasDefault: boolean
  optional: boolean
  description?: string
}

/** Strip defaults, optionals and preprocessing to the schema that does the checking. */
export function unwrap(schema: z.ZodType): Unwrapped {
  const out: Unwrapped = { base: schema, hasDefault: false, optional: false }
  let s = schema
  for (;;) {
    out.description ??= z.globalRegistry.get(s)?.description
    if (s === durationSchema || s === sizeSchema) break
    const def = defOf(s)
    if (def.type === 'default' || def.type === 'prefault') {
      if (!out.hasDefault) {
        out.hasDefault = true
        out.default = def.defaultValue
      }
      s = def.innerType!
    } else if (def.type === 'optional' || def.type === 'nullable') {
      out.optional = true
      s = def.innerType!
    } else if (def.type === 'pipe' && defOf(def.in!).type === 'transform') {
      s = def.out! // z.preprocess: the schema after the preprocessing
    } else if (def.type === 'pipe' && defOf(def.out!).type === 'transform' && defOf(def.in!).type !== 'unknown') {
      s = def.in! // schema.transform(...): document what is written
    } else break
  }
  out.base = s
  return out
}

const probe = Symbol('probe')

/** The type a schema names when it refuses a value of the wrong kind. */
export function typeName(schema: z.ZodType): string {
  const def = defOf(schema)
  if (def.type === 'object') return 'mapping'
  if (def.type === 'array') return `list of ${plural(typeName(unwrap(def.element!).base))}`
  if (def.type === 'record') return `mapping of names to ${typeName(unwrap(def.valueType!).base)}s`
  const result = schema.safeParse(probe)
  const message = result.success ? '' : (result.error.issues[0]?.message ?? '')
  const m = /^(?:required: )?expected (.+?), got /.exec(message)
  if (!m) return def.type
  // "a duration like 200ms, 5s or 10m": the reference explains the forms once.
  return m[1]!.replace(/^an? /, '').replace(/^(duration|size|size or percentage) like .*$/, '$1')
}

function plural(type: string): string {
  return /^[\w ]+$/.test(type) && !type.endsWith('s') ? `${type}s` : type
}

/** A default as it would be written in the config file. */
export function formatDefault(type: string, value: unknown): string {
  if (type === 'duration' && typeof value === 'number') return formatDuration(value)
  if (type === 'size' && typeof value === 'number') return formatSize(value)
  if (typeof value === 'string') return value === '' ? "''" : value
  return JSON.stringify(value)
}

function formatDuration(ms: number): string {
  const units: Array<[string, number]> = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ]
  for (const [unit, size] of units) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`
  return `${ms}ms`
}

function formatSize(bytes: number): string {
  const units: Array<[string, number]> = [
    ['TiB', 2 ** 40],
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ]
  for (const [unit, size] of units) if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`
  return String(bytes)
}

/** The fields of a mapping schema, nested mappings flattened with dotted paths. */
export function describeFields(schema: z.ZodType, prefix = ''): FieldDoc[] {
  const { base } = unwrap(schema)
  const shape = defOf(base).type === 'object' ? defOf(base).shape! : undefined
  if (!shape) return [describeValue(schema, prefix)]
  const out: FieldDoc[] = []
  for (const [key, field] of Object.entries(shape)) {
    const path = prefix === '' ? key : `${prefix}.${key}`
    const u = unwrap(field)
    if (defOf(u.base).type === 'object') {
      out.push({ ...describeValue(field, path), type: 'mapping' })
      out.push(...describeFields(u.base, path))
    } else out.push(describeValue(field, path))
  }
  return out
}

function describeValue(schema: z.ZodType, path: string): FieldDoc {
  const u = unwrap(schema)
  // A section or list that reads absent as empty (`section`, `list`) is not required either.
  const doc: FieldDoc = { path, type: typeName(u.base), required: !u.hasDefault && !u.optional && !schema.safeParse(undefined).success }
  if (u.hasDefault) doc.default = formatDefault(doc.type, u.default)
  if (u.description !== undefined) doc.description = u.description
  return doc
}

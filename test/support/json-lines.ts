// What a file output wrote: one JSON object per line; a file not written yet is empty.
import { existsSync, readFileSync } from 'node:fs'

export function readJsonLines(path: string): Array<Record<string, unknown>> {
  if (!existsSync(path)) return []
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

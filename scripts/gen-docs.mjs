// Writes docs/config.md from the schemas (src/config/reference.ts), built first by
// `npm run docs`. With --check it writes nothing and exits 1 when the file is stale.
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { renderConfigReference } from '../dist/src/config/reference.js'

const target = fileURLToPath(new URL('../docs/config.md', import.meta.url))
const fresh = renderConfigReference()
let current = ''
try {
  current = readFileSync(target, 'utf8')
} catch {
  // not written yet
}
if (process.argv.includes('--check')) {
  if (current !== fresh) {
    process.stderr.write('docs/config.md is out of date: run `npm run docs`\n')
    process.exit(1)
  }
  process.stdout.write('docs/config.md is up to date\n')
} else if (current === fresh) {
  process.stdout.write('docs/config.md is up to date\n')
} else {
  writeFileSync(target, fresh)
  process.stdout.write('wrote docs/config.md\n')
}

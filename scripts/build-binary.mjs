// `npm run build:binary`: dist/binge, one executable file for the build machine's
// platform (docs/design.md §7). A Node single executable application: the Node that
// runs this script (Node 24, from node_modules/.bin under npm) with the CLI injected
// into it. Node 24 takes a CommonJS main only, so the CLI is bundled once more, as
// CommonJS, with everything inside, classic-level included; its `node-gyp-build` call
// is pointed at scripts/sea-addon.cjs, which loads the LevelDB addon the binary
// carries as an asset (extracted once to a cache directory, checked by SHA-256).
// The SEA config adds a V8 code cache: code compiled at build time ships in the binary,
// so a start skips most compiling (measured with bench/startup.ts: ready about 50 ms
// sooner, 3 MiB less idle RSS). No heap flags: --max-semi-space-size=1 saved 5-6 MiB
// of idle RSS but halved ingest throughput (6,500 vs 12,000-13,000 req/s); a
// memory-tight box can still set it: NODE_OPTIONS reaches the binary.
// Output: dist/binge; its pieces (bundle, blob, config) stay in dist/sea/.
//
// To weigh one lever at a time (bench/startup.ts, BINGE_BENCH_EXTRA), a variant can be
// built elsewhere: BINGE_SEA_OUT=/tmp/b (the binary), BINGE_SEA_CODE_CACHE=0,
// BINGE_SEA_EXEC_ARGV='["--max-semi-space-size=1"]' (JSON), BINGE_SEA_MINIFY=0.
import { execFileSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = fileURLToPath(new URL('..', import.meta.url))
const require = createRequire(import.meta.url)
const out = path.resolve(process.env.BINGE_SEA_OUT ?? path.join(root, 'dist', 'binge'))
const seaDir = process.env.BINGE_SEA_OUT ? `${out}.sea` : path.join(root, 'dist', 'sea')
const flag = (name, fallback) => (process.env[name] === undefined ? fallback : process.env[name] !== '0')
const major = Number(process.versions.node.split('.')[0])
if (major < 22)
  throw new Error(`build:binary needs Node 22 or newer (this is ${process.version}); run it through npm, which uses node_modules/.bin/node`)

// Node flags the binary starts with: none by default (see the top of this file).
const execArgv = process.env.BINGE_SEA_EXEC_ARGV ? JSON.parse(process.env.BINGE_SEA_EXEC_ARGV) : []
const useCodeCache = flag('BINGE_SEA_CODE_CACHE', true)
const minify = flag('BINGE_SEA_MINIFY', true)

const started = Date.now()
fs.mkdirSync(seaDir, { recursive: true })

// The addon node-gyp-build would load on this machine (a prebuild, or a local build).
const levelDir = path.dirname(require.resolve('classic-level/package.json'))
const addonPath = require('node-gyp-build').resolve(levelDir)
const addonBytes = fs.readFileSync(addonPath)
const addonSha256 = crypto.createHash('sha256').update(addonBytes).digest('hex')
const assetName = 'classic-level.node'

const embeddedAddon = {
  name: 'embedded-addon',
  setup(b) {
    b.onResolve({ filter: /^node-gyp-build$/ }, (args) => {
      if (!args.importer.includes(`${path.sep}classic-level${path.sep}`))
        throw new Error(`unexpected native addon loader in ${args.importer}`)
      return { path: path.join(root, 'scripts', 'sea-addon.cjs') }
    })
  },
}

const bundle = path.join(seaDir, 'binge.cjs')
await build({
  entryPoints: [path.join(root, 'src', 'cli', 'main.ts')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: `node${major}`,
  // Smaller source: V8 holds all of it in memory, and parses less.
  minifySyntax: minify,
  minifyWhitespace: minify,
  minifyIdentifiers: minify,
  keepNames: true,
  plugins: [embeddedAddon],
  define: {
    // The main script of a SEA is CommonJS: no import.meta (main.ts does not read it then,
    // and scripts/webhook-receiver.mjs must not take itself for the program run).
    'import.meta.url': 'undefined',
    __BINGE_ADDON_ASSET__: JSON.stringify(assetName),
    __BINGE_ADDON_SHA256__: JSON.stringify(addonSha256),
  },
  logLevel: 'warning',
})

const config = path.join(seaDir, 'sea-config.json')
const blob = path.join(seaDir, 'binge.blob')
fs.writeFileSync(
  config,
  `${JSON.stringify(
    {
      main: bundle,
      output: blob,
      disableExperimentalSEAWarning: true,
      useCodeCache,
      ...(execArgv.length > 0 ? { execArgv } : {}),
      assets: { [assetName]: addonPath },
    },
    null,
    2,
  )}\n`,
)
/** Run a build tool quietly; what it printed is shown only when it fails. */
function quietly(file, args) {
  try {
    execFileSync(file, args, { stdio: 'pipe' })
  } catch (err) {
    process.stderr.write(`${err.stdout ?? ''}${err.stderr ?? ''}`)
    throw err
  }
}

quietly(process.execPath, ['--experimental-sea-config', config])

// A copy of this Node without its symbol table and debug sections (18 MiB less; the
// dynamic symbols addons link against stay), then the blob.
const temp = `${out}.tmp`
fs.rmSync(temp, { force: true })
fs.copyFileSync(process.execPath, temp)
fs.chmodSync(temp, 0o755)
try {
  execFileSync('strip', ['--strip-all', temp], { stdio: 'ignore' })
} catch (err) {
  process.stderr.write(`build:binary: strip failed (${err.message}); dist/binge keeps Node's symbol table\n`)
}
quietly(process.execPath, [
  require.resolve('postject/dist/cli.js'),
  temp,
  'NODE_SEA_BLOB',
  blob,
  '--sentinel-fuse',
  'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
])
fs.renameSync(temp, out)
const mib = (n) => (n / 2 ** 20).toFixed(1)
process.stdout.write(
  `build:binary: ${path.relative(process.cwd(), out)} (${mib(fs.statSync(out).size)} MiB, Node ${process.version}, addon ${path.relative(levelDir, addonPath)} sha256 ${addonSha256.slice(0, 12)}…) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
)

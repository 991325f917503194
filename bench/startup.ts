// Start-up benchmark (docs/design.md §7): from spawn to `/readyz` 200 (best of N runs)
// and the idle RSS of a node, for the single executable `dist/binge` and for
// `node dist/binge.mjs` (the bundle on this Node), side by side; for a node whose config
// has a mesh section (the figure the design bounds: ready <= 300 ms, RSS <= 64 MiB)
// and for one without. Each run starts a fresh node in a fresh data directory, polls
// /readyz every 5 ms, then leaves the node idle and reads VmRSS from /proc (Linux).
//
//   npm run bench:startup      (builds the binary first; `npm run bench` runs it too)
//   BINGE_BENCH_RUNS=5 BINGE_BENCH_IDLE=10 node dist/bench/startup.js
//   BINGE_BENCH_EXTRA='[["binary, no flags","/tmp/binge-noflags"]]' node dist/bench/startup.js
//
// The file-backed part of RSS is the executable's pages the process touched, and it
// depends on the page cache: a file just written (a fresh build, a download) is all in
// cache, and the kernel then maps more of it at each fault (dist/binge measured 70 MiB
// file-backed fresh from the build, 55 MiB once its cold pages had left the cache). So
// before each command's warm-up start, its executable's pages are dropped from the cache
// (GNU dd iflag=nocache), and the measured starts see what a start after an earlier one
// sees. RSS is printed with its two parts, anonymous (the process's own) + file-backed.
//
// BINGE_BENCH_EXTRA adds commands (JSON: [label, program, ...args], binge's arguments
// follow) to compare one lever at a time: a binary built another way, node with flags.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { envInt, envSeconds, freePort } from './support.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const runs = envInt('BINGE_BENCH_RUNS', 3)
const idleSeconds = envSeconds('BINGE_BENCH_IDLE', 5)
const readyLimitMs = 300
const rssLimitMiB = 64

interface Variant {
  label: string
  command: string
  args: string[]
}

function variants(): Variant[] {
  const list: Variant[] = [
    { label: 'dist/binge (single executable)', command: join(root, 'dist', 'binge'), args: [] },
    { label: `node dist/binge.mjs (Node ${process.versions.node})`, command: process.execPath, args: [join(root, 'dist', 'binge.mjs')] },
  ]
  for (const c of JSON.parse(process.env.BINGE_BENCH_EXTRA ?? '[]') as string[][]) {
    const [label, command, ...args] = c
    if (!label || !command) throw new Error('BINGE_BENCH_EXTRA: each entry is [label, program, ...args]')
    list.push({ label, command, args })
  }
  for (const v of list)
    if (!existsSync(v.command) && !existsSync(v.args[0] ?? '')) throw new Error(`${v.command} is missing: run npm run build:binary`)
  return list
}

/** A realistic small node: a mesh section (or not), two pipelines with JSONata, a file and an http output. */
function configText(dir: string, httpPort: number, mesh: boolean): string {
  return [
    `node: { id: bench, dataDir: ${JSON.stringify(join(dir, 'data'))} }`,
    `http: { listen: "127.0.0.1:${httpPort}" }`,
    'log: { level: warn }',
    ...(mesh ? ['mesh:', '  listen: /ip4/127.0.0.1/tcp/0', `  psk: ${'ab'.repeat(32)}`, '  bootstrap: []'] : []),
    'pipelines:',
    '  raw:',
    `    when: 'type = "temperature"'`,
    `    outputs: [{ file: { path: ${JSON.stringify(join(dir, 'out', 'raw.jsonl'))} } }]`,
    '  hot:',
    `    steps: [{ filter: 'celsius > 40' }, { map: '{"sensor": sensor, "f": celsius * 9 / 5 + 32}' }]`,
    '    outputs: [{ http: { url: "http://127.0.0.1:9/hot", timeout: 5s } }]',
    '',
  ].join('\n')
}

function readyz(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/readyz', agent: false }, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on('error', () => resolve(false))
    req.setTimeout(1_000, () => req.destroy())
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** VmRSS and its two parts: anonymous (the process's own heap) and file-backed (the executable's pages it touched; shared, clean). */
function rssOf(pid: number): { rss: number; anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (field: string) => {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)
    if (!m) throw new Error(`no ${field} for ${pid}`)
    return Number(m[1]) / 1024
  }
  return { rss: kib('VmRSS'), anon: kib('RssAnon'), file: kib('RssFile') }
}

interface RunResult {
  readyMs: number
  rss: { rss: number; anon: number; file: number }
}

async function oneRun(v: Variant, mesh: boolean): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'binge-bench-startup-'))
  let child: ChildProcess | undefined
  try {
    const port = await freePort()
    const file = join(dir, 'binge.yaml')
    writeFileSync(file, configText(dir, port, mesh))
    // The environment of a fresh shell, with the addon cache kept in one place across runs.
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? dir,
      XDG_CACHE_HOME: join(tmpdir(), 'binge-bench-cache'),
    }
    let stderr = ''
    const started = performance.now()
    child = spawn(v.command, [...v.args, 'start', '--config', file], { env, stdio: ['ignore', 'ignore', 'pipe'] })
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
    const deadline = started + 30_000
    while (!(await readyz(port))) {
      if (child.exitCode !== null || performance.now() > deadline) throw new Error(`${v.label} did not become ready\n${stderr}`)
      await sleep(5)
    }
    const readyMs = performance.now() - started
    await sleep(idleSeconds * 1000)
    return { readyMs, rss: rssOf(child.pid!) }
  } finally {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r))
      child.kill('SIGKILL')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Drop `file`'s pages from the page cache (GNU dd); false where that is not possible. */
function dropFromPageCache(file: string): boolean {
  return spawnSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' }).status === 0
}

async function measure(v: Variant, mesh: boolean): Promise<RunResult[]> {
  // One unmeasured start first, with the executable out of the page cache: it fills the
  // addon cache and brings back the pages a start needs.
  if (!dropFromPageCache(v.command)) process.stdout.write(`(could not drop ${v.command} from the page cache)\n`)
  await oneRun(v, mesh)
  const results: RunResult[] = []
  for (let i = 0; i < runs; i++) results.push(await oneRun(v, mesh))
  return results
}

const pad = (s: string, n: number) => s.padEnd(n)
const list = variants()
const binary = join(root, 'dist', 'binge')
process.stdout.write(
  `binge start-up benchmark: best of ${runs} runs (after one warm-up), idle RSS after ${idleSeconds} s; ` +
    `dist/binge is ${(statSync(binary).size / 2 ** 20).toFixed(1)} MiB\n` +
    `target for a node with a mesh section: ready <= ${readyLimitMs} ms, idle RSS <= ${rssLimitMiB} MiB\n\n`,
)
const width = Math.max(...list.map((v) => v.label.length)) + 2
process.stdout.write(
  `${pad('', width)}${pad('config', 9)}${pad('ready ms (best; all)', 24)}${pad('idle RSS MiB (min; all)', 30)}of which anon + file\n`,
)
for (const mesh of [true, false]) {
  for (const v of list) {
    const r = await measure(v, mesh)
    const ready = r.map((x) => x.readyMs)
    const best = Math.min(...ready)
    const least = r.reduce((a, b) => (b.rss.rss < a.rss.rss ? b : a))
    const mark = mesh ? `  ${best <= readyLimitMs ? 'ok' : 'OVER'}/${least.rss.rss <= rssLimitMiB ? 'ok' : 'OVER'}` : ''
    process.stdout.write(
      `${pad(v.label, width)}${pad(mesh ? 'mesh' : 'no mesh', 9)}${pad(`${best.toFixed(0)}; ${ready.map((x) => x.toFixed(0)).join(' ')}`, 24)}` +
        `${pad(`${least.rss.rss.toFixed(1)}; ${r.map((x) => x.rss.rss.toFixed(1)).join(' ')}`, 30)}${least.rss.anon.toFixed(1)} + ${least.rss.file.toFixed(1)}${mark}\n`,
    )
  }
}

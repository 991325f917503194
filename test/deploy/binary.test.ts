// The single executable (docs/design.md §7): dist/binge, as `npm run build:binary`
// makes it (npm test builds it first), copied alone into an empty directory and run
// there with a PATH that has no node on it and a fresh HOME (so LevelDB's addon is
// extracted from the binary into an empty cache). It validates a config, starts a
// durable node that takes POSTed events, survives kill -9 with every acknowledged
// event written to its file output after the restart; `run`, `status` and `mesh up`
// (two meshed nodes and the webhook receiver, all the binary itself) work there too.
// The cached addon is checked by its hash: a damaged copy is replaced, never loaded.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { reservePorts } from '../support/ports.js'
import {
  compareDelivery,
  getJson,
  makeTempDir,
  readOutput,
  removeTempDirs,
  startIngestClients,
  waitFor,
  writeConfig,
} from '../support/node-process.js'
import { repoRoot, requireBuilt } from './deploy-support.js'

const built = path.join(repoRoot, 'dist', 'binge')
const children: ChildProcess[] = []

afterEach(async (ctx) => {
  for (const c of children.splice(0)) {
    if (c.exitCode !== null || c.signalCode !== null) continue
    const exited = new Promise((r) => c.once('exit', r))
    // mesh up runs its members in their own process groups; it stops them on SIGTERM.
    c.kill('SIGKILL')
    await exited
  }
  removeTempDirs(ctx.task.result?.state === 'fail')
})

interface Place {
  dir: string
  binge: string
  env: Record<string, string>
}

/** An empty directory holding only the binary; an empty bin/ as PATH, a fresh HOME. */
function placeAlone(): Place {
  requireBuilt(built, 'npm run build:binary')
  const dir = makeTempDir('binge-binary-')
  const binge = path.join(dir, 'binge')
  fs.copyFileSync(built, binge)
  fs.chmodSync(binge, 0o755)
  expect(fs.readdirSync(dir)).toEqual(['binge'])
  // Beside it, not in it, and removed with it.
  const emptyBin = makeTempDir(`${path.basename(dir)}-bin-`)
  const home = makeTempDir(`${path.basename(dir)}-home-`)
  const env = { PATH: emptyBin, HOME: home }
  // No node, nor anything else, is reachable through this PATH.
  expect(spawnSync('node', ['--version'], { env }).error).toBeDefined()
  return { dir, binge, env }
}

function run(p: Place, args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(p.binge, args, { cwd: p.dir, env: p.env, input, encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

function start(p: Place, args: string[]): { child: ChildProcess; stderr: () => string } {
  const child = spawn(p.binge, args, { cwd: p.dir, env: p.env, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  child.stdout!.on('data', () => undefined)
  return { child, stderr: () => stderr }
}

async function ready(url: string, child: ChildProcess, stderr: () => string): Promise<void> {
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`binge exited ${child.exitCode}\n${stderr()}`)
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) })
      return res.status === 200
    },
    { timeoutMs: 30_000, intervalMs: 20, what: `${url}/readyz to answer 200\n${stderr()}` },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${stderr()}`)
  })
}

async function kill9(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGKILL')
  await exited
}

describe('dist/binge, alone in an empty directory with no node on the PATH', () => {
  it('validates, starts, takes events, and after kill -9 and a restart delivers every acknowledged one', async () => {
    const p = placeAlone()
    const [httpPort] = await reservePorts(1)
    const url = `http://127.0.0.1:${httpPort}`
    const out = path.join(p.dir, 'out', 'events.jsonl')
    const config = writeConfig(p.dir, {
      node: { id: 'alone', dataDir: './data' },
      http: { listen: `127.0.0.1:${httpPort}` },
      queue: { sync: 'batch' },
      workers: 2,
      pipelines: { all: { outputs: [{ file: { path: './out/events.jsonl' } }] } },
    })
    expect(run(p, ['validate', '--config', config])).toMatchObject({ status: 0 })
    const broken = writeConfig(p.dir, { node: { id: 'broken' }, pipelines: { x: { outputs: [{ nowhere: {} }] } } }, 'broken.yaml')
    const refused = run(p, ['validate', '--config', broken])
    expect(refused.status).toBe(2)
    expect(refused.stderr).toContain('broken.yaml')

    let node = start(p, ['start', '--config', config])
    await ready(url, node.child, node.stderr)
    // The addon came out of the binary into the cache under the fresh HOME, named by its hash.
    const cache = path.join(p.env.HOME!, '.cache', 'binge')
    expect(fs.readdirSync(cache)).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/)])
    const sha256 = fs.readdirSync(cache)[0]!
    const addon = path.join(cache, sha256, 'classic-level.node')
    const hashOf = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex')
    expect(hashOf(addon)).toBe(sha256)

    const clients = startIngestClients({
      clients: 3,
      maxBatch: 20,
      prefix: 'b',
      target: () => (node.child.exitCode === null ? url : undefined),
    })
    await waitFor(() => clients.ledger.acked.size >= 2_000, { timeoutMs: 60_000, what: '2,000 acknowledged events' })
    await kill9(node.child)
    clients.pause()
    const ackedAtKill = clients.ledger.acked.size
    // A damaged copy in the cache is never loaded: the restart writes the right bytes again.
    fs.chmodSync(addon, 0o600)
    fs.writeFileSync(addon, 'not a LevelDB addon')

    node = start(p, ['start', '--config', config])
    await ready(url, node.child, node.stderr)
    expect(hashOf(addon)).toBe(sha256)
    clients.resume()
    await waitFor(() => clients.ledger.acked.size >= ackedAtKill + 500, { timeoutMs: 60_000, what: '500 more acknowledged events' })
    await clients.stop()
    const { ledger } = clients
    expect(ledger.malformed).toEqual([])
    await waitFor(
      async () => {
        const stats = await getJson<{ queue: { unprocessed: number; inflight: number } }>(`${url}/stats`)
        return stats.queue.unprocessed === 0 && stats.queue.inflight === 0
      },
      { timeoutMs: 60_000, what: 'the restarted node to drain' },
    )
    const report = compareDelivery(ledger, readOutput(out))
    expect(report.lost, `acked ${report.acked}`).toEqual([])
    expect(report.phantoms).toEqual([])
    expect(report.acked).toBeGreaterThanOrEqual(2_500)

    // `status` from the same binary, against the running node.
    const status = run(p, ['status', '--url', url])
    expect(status.status).toBe(0)
    expect(status.stdout).toContain('alone')
    expect(run(p, ['healthcheck', '--url', url]).status).toBe(0)
    node.child.kill('SIGTERM')
    expect(await new Promise((r) => node.child.once('exit', (code) => r(code)))).toBe(0)
    expect(run(p, ['healthcheck', '--url', url]).status).toBe(1)
  })

  it('runs events one-shot, and `mesh up` runs meshed nodes and the webhook receiver from the binary alone', async () => {
    const p = placeAlone()
    const oneShot = writeConfig(p.dir, {
      node: { id: 'once' },
      pipelines: { hot: { steps: [{ filter: 'celsius > 40' }], outputs: [{ stdout: {} }] } },
    })
    const ran = run(p, ['run', '--config', oneShot, '-'], '{"celsius": 45}\n{"celsius": 20}\n')
    expect(ran.status, ran.stderr).toBe(0)
    expect(ran.stdout.trim().split('\n')).toHaveLength(1)
    expect(ran.stdout).toContain('"celsius":45')

    const meshDir = path.join(p.dir, 'mesh')
    fs.mkdirSync(meshDir)
    const [httpA, httpB, meshA, meshB, hook] = await reservePorts(5)
    const nodeConfig = (id: string, http: number, mesh: number, peer: number) => ({
      node: { id, dataDir: `./data/${id}` },
      http: { listen: `127.0.0.1:${http}` },
      mesh: { listen: `/ip4/127.0.0.1/tcp/${mesh}`, psk: 'c'.repeat(64), bootstrap: [`127.0.0.1:${peer}`], gossipInterval: '250ms' },
      pipelines: { [`p-${id}`]: { outputs: [{ http: { url: '${BINGE_WEBHOOK_URL}/hook' } }] } },
    })
    writeConfig(meshDir, nodeConfig('a', httpA!, meshA!, meshB!), 'a.yaml')
    writeConfig(meshDir, nodeConfig('b', httpB!, meshB!, meshA!), 'b.yaml')
    const up = start(p, ['mesh', 'up', meshDir, '--webhook-receiver', `127.0.0.1:${hook}`, '--json'])
    for (const port of [httpA, httpB]) await ready(`http://127.0.0.1:${port}`, up.child, up.stderr)
    await waitFor(
      async () => {
        const stats = await getJson<{ peers: Array<{ node: string; connected: boolean }> }>(`http://127.0.0.1:${httpA}/stats`)
        return stats.peers.some((x) => x.node === 'b' && x.connected)
      },
      { timeoutMs: 30_000, what: 'node a to see node b' },
    )
    // An event for b's pipeline, posted to a: routed over the mesh, out of b's output to the receiver.
    const posted = await fetch(`http://127.0.0.1:${httpA}/events/p-b`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"hello":"mesh"}',
    })
    expect(posted.status).toBe(202)
    await waitFor(
      async () => {
        const seen = (await getJson<{ count: number }>(`http://127.0.0.1:${hook}/`)).count
        return seen >= 1
      },
      { timeoutMs: 30_000, what: 'the receiver to get the event from b' },
    )
    const exited = new Promise((r) => up.child.once('exit', (code) => r(code)))
    up.child.kill('SIGINT')
    expect(await exited).toBe(0)
  })
})

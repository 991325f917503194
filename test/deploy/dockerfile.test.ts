// The Dockerfile, read without a Docker engine: multi-stage on the official Node image,
// production dependencies only in the runtime (and every package the code imports is
// one), a non-root user, data on a volume, a HEALTHCHECK on /healthz, and `binge start`
// of the package's built bin as the entry point with the config path from the
// environment. The entry point and the health check are then run here, as the
// container would run them (/app being the repo), against a real node.
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { binPath, cleanEnv, meshConfigsDir, repoRoot, requireBuiltBin } from './deploy-support.js'

interface Instruction {
  op: string
  args: string
}
interface Stage {
  from: string
  name?: string
  steps: Instruction[]
}

/** Instructions with their continuation lines joined; comments and blank lines dropped. */
function instructions(text: string): Instruction[] {
  const joined = text.replace(/\\\r?\n(\s*#.*\r?\n)*/g, ' ')
  return joined
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const i = l.search(/\s/)
      return { op: l.slice(0, i).toUpperCase(), args: l.slice(i + 1).trim() }
    })
}

const dockerfile = instructions(fs.readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8'))
const args = new Map(dockerfile.filter((s) => s.op === 'ARG').map((s) => s.args.split('=') as [string, string]))
const expand = (text: string) => text.replace(/\$\{(\w+)\}/g, (_, k: string) => args.get(k) ?? '')
const stages: Stage[] = []
for (const step of dockerfile) {
  if (step.op === 'FROM') {
    const [from, as, name] = expand(step.args).split(/\s+/)
    stages.push({ from: from!, ...(as?.toUpperCase() === 'AS' ? { name } : {}), steps: [] })
  } else stages.at(-1)?.steps.push(step)
}
const runtime = stages.at(-1)!
const last = (op: string) => runtime.steps.filter((s) => s.op === op).at(-1)
const env = Object.fromEntries(
  runtime.steps.filter((s) => s.op === 'ENV').flatMap((s) => [...s.args.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])),
)
const workdir = last('WORKDIR')!.args
const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  bin: { binge: string }
  scripts: Record<string, string>
  dependencies: Record<string, string>
}

const children: Array<{ kill(signal: NodeJS.Signals): boolean; exitCode: number | null }> = []
const dirs: string[] = []
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL')
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
    server.once('error', reject)
  })
}

describe('Dockerfile', () => {
  it('builds in stages on the official Node image of the major version package.json asks for', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2)
    for (const s of stages) expect(s.from).toMatch(/^node:20(\.\d+)*(-[a-z0-9-]+)?$/)
    const build = stages.find((s) => s.steps.some((x) => x.op === 'RUN' && /\bnpm run build\b/.test(x.args)))
    expect(build, 'a stage that runs npm run build').toBeDefined()
    expect(pkg.scripts.build).toMatch(/scripts\/bundle\.mjs/)
    expect(runtime).not.toBe(build)
  })

  it('gives the runtime production dependencies only, and every package the code imports is one', () => {
    const modules = runtime.steps.find((s) => s.op === 'COPY' && /node_modules/.test(s.args))
    const from = /--from=(\S+)/.exec(modules?.args ?? '')?.[1]
    const deps = stages.find((s) => s.name === from)
    expect(deps?.steps.some((s) => s.op === 'RUN' && /npm ci --omit=dev/.test(s.args))).toBe(true)
    expect(runtime.steps.some((s) => s.op === 'RUN' && /npm (ci|install)/.test(s.args))).toBe(false)

    const sources: string[] = [path.join(repoRoot, 'scripts', 'webhook-receiver.mjs')]
    for (const e of fs.readdirSync(path.join(repoRoot, 'src'), { recursive: true, encoding: 'utf8' })) {
      if (e.endsWith('.ts')) sources.push(path.join(repoRoot, 'src', e))
    }
    const imported = new Set<string>()
    for (const file of sources) {
      const text = fs.readFileSync(file, 'utf8')
      for (const m of text.matchAll(
        /(?:^|\n)\s*(?:import|export)(?!\s+type\b)[^'";]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g,
      )) {
        const spec = (m[1] ?? m[2] ?? m[3])!
        if (spec.startsWith('.') || spec.startsWith('node:')) continue
        imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!)
      }
    }
    expect(imported.size).toBeGreaterThan(5)
    for (const name of imported) expect(Object.keys(pkg.dependencies), `${name} is imported at run time`).toContain(name)
  })

  it('runs as a non-root user with the data directory on a volume', () => {
    expect(last('USER')?.args).toBeDefined()
    expect(last('USER')!.args).not.toMatch(/^(root|0)(:|$)/)
    const volumes = last('VOLUME')!.args
    expect(env.BINGE_DATA_DIR).toBe('/data')
    expect(volumes).toContain(`"${env.BINGE_DATA_DIR}"`)
    expect(env.BINGE_OUT_DIR!.startsWith(`${env.BINGE_DATA_DIR}/`)).toBe(true)
    const exposed = last('EXPOSE')!.args.split(/\s+/)
    expect(exposed).toContain(env.BINGE_HTTP_LISTEN!.split(':')[1])
    expect(exposed).toContain(/\/tcp\/(\d+)/.exec(env.BINGE_MESH_LISTEN!)![1])
  })

  it("has `binge start` of the package's built bin as its entry point, the config path from BINGE_CONFIG", () => {
    const entry = JSON.parse(last('ENTRYPOINT')!.args) as string[]
    expect(entry.slice(0, 2)).toEqual(['/bin/sh', '-c'])
    expect(entry[2]).toBe(`exec node ${path.posix.join(workdir, pkg.bin.binge)} start --config "$BINGE_CONFIG"`)
    expect(env.BINGE_CONFIG).toMatch(/^\/.+\.yaml$/)
    const copied = runtime.steps.find((s) => s.op === 'COPY' && s.args.includes(pkg.bin.binge))
    expect(copied?.args).toMatch(/^--from=\S+ \S+ \S+$/)
    const ignored = fs
      .readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8')
      .split(/\r?\n/)
      .filter((l) => l && !l.startsWith('#'))
    for (const must of ['node_modules', 'dist', 'data', 'out', '.git']) expect(ignored).toContain(must)
    // Every plain COPY source exists and is not ignored.
    for (const s of stages.flatMap((st) => st.steps).filter((x) => x.op === 'COPY' && !x.args.startsWith('--from'))) {
      for (const source of s.args.split(/\s+/).slice(0, -1)) {
        expect(fs.existsSync(path.join(repoRoot, source)), source).toBe(true)
        expect(
          ignored.some((i) => source === i || source.startsWith(`${i}/`)),
          `${source} is in .dockerignore`,
        ).toBe(false)
      }
    }
  })

  it('the entry point starts a node from BINGE_CONFIG, the health check sees it, and SIGTERM stops it with exit 0', async () => {
    requireBuiltBin()
    const entry = JSON.parse(last('ENTRYPOINT')!.args) as string[]
    const health = /CMD\s+(\[.*\])\s*$/.exec(last('HEALTHCHECK')!.args)
    expect(health, 'HEALTHCHECK ... CMD ["..."]').not.toBeNull()
    const check = JSON.parse(health![1]!) as string[]
    expect(check.join(' ')).toContain('/healthz')

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'binge-entrypoint-'))
    dirs.push(dir)
    const [http, closed] = [await freePort(), await freePort()]
    const containerEnv = {
      ...cleanEnv(env),
      BINGE_CONFIG: path.join(meshConfigsDir, 'node-c.yaml'),
      BINGE_HTTP_LISTEN: `127.0.0.1:${http}`,
      BINGE_MESH_LISTEN: '/ip4/127.0.0.1/tcp/0',
      BINGE_BOOTSTRAP: `127.0.0.1:${closed}`,
      BINGE_DATA_DIR: path.join(dir, 'data'),
      BINGE_OUT_DIR: path.join(dir, 'out'),
    }
    const healthy = () => spawnSync(check[0]!, check.slice(1), { env: containerEnv, timeout: 10_000 }).status === 0
    expect(healthy()).toBe(false)

    // As the container runs it, with /app being this repo.
    const script = entry[2]!.split(`${workdir}/`).join(`${repoRoot.replace(/\/$/, '')}/`)
    expect(script).toContain(binPath())
    const child = spawn(entry[0]!, [entry[1]!, script, ...entry.slice(3)], { env: containerEnv, stdio: ['ignore', 'ignore', 'pipe'] })
    children.push(child)
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))

    const deadline = Date.now() + 30_000
    while (!healthy()) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the node did not become healthy\n${stderr}`)
      await new Promise((r) => setTimeout(r, 200))
    }
    // `exec`: the shell's pid is the node's, so the container's SIGTERM reaches it.
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect(stderr).toContain('The node stopped cleanly.')
    expect(healthy()).toBe(false)
  })
})

// The Dockerfile, read without a Docker engine: the binary built in a stage on the
// official Node image of the major version package.json pins, and a runtime on a
// minimal base with that one file and no Node, no node_modules, no npm; a non-root user,
// data on a volume, a HEALTHCHECK on /healthz, and `binge start` as the entry point
// with the config path from the environment. The entry point and the health check are
// then run here as the container would run them, with the built dist/binge as the only
// thing on their PATH, against a real node.
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { cleanEnv, meshConfigsDir, repoRoot, requireBuilt } from './deploy-support.js'
import { freePort } from '../support/ports.js'

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
  devDependencies: Record<string, string>
}
const binary = path.join(repoRoot, 'dist', 'binge')
const build = stages.find((s) => s.steps.some((x) => x.op === 'RUN' && /\bnpm run build:binary\b/.test(x.args)))

const children: Array<{ kill(signal: NodeJS.Signals): boolean; exitCode: number | null }> = []
const dirs: string[] = []
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL')
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

describe('Dockerfile', () => {
  it('builds the binary in a stage on the official Node image of the major version package.json pins', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2)
    const major = /\^?(\d+)/.exec(pkg.devDependencies.node ?? '')?.[1]
    expect(major, 'package.json pins node as a devDependency').toBeDefined()
    expect(build, 'a stage that runs npm run build:binary').toBeDefined()
    expect(build!.from).toMatch(new RegExp(`^node:${major}(\\.\\d+)*(-[a-z0-9-]+)?$`))
    expect(build!.steps.some((s) => s.op === 'RUN' && /\bnpm ci\b/.test(s.args))).toBe(true)
    expect(pkg.scripts['build:binary']).toMatch(/scripts\/build-binary\.mjs/)
    expect(runtime).not.toBe(build)
  })

  it('runs the binary alone on a minimal base: no Node, no node_modules, no npm', () => {
    expect(runtime.from).toMatch(/^(debian:bookworm-slim|gcr\.io\/distroless\/cc(-debian12)?(:[a-z0-9-]+)?)$/)
    const copies = runtime.steps.filter((s) => s.op === 'COPY')
    expect(copies.some((s) => /node_modules/.test(s.args))).toBe(false)
    const bin = copies.find((s) => s.args.startsWith(`--from=${build!.name} `))
    expect(bin?.args).toBe(`--from=${build!.name} /app/dist/binge /usr/local/bin/binge`)
    for (const step of runtime.steps) {
      if (!['RUN', 'ENTRYPOINT', 'CMD', 'HEALTHCHECK'].includes(step.op)) continue
      expect(step.args, `${step.op} ${step.args}`).not.toMatch(/\b(node|npm|npx)\b/)
    }
  })

  it('every package the code imports is a dependency (the bundles and the binary take them from there)', () => {
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
    // The cache the binary extracts LevelDB's addon to is the user's own.
    expect(env.XDG_CACHE_HOME).toMatch(/^\/home\/[a-z]+\/\.cache$/)
    const exposed = last('EXPOSE')!.args.split(/\s+/)
    expect(exposed).toContain(env.BINGE_HTTP_LISTEN!.split(':')[1])
    expect(exposed).toContain(/\/tcp\/(\d+)/.exec(env.BINGE_MESH_LISTEN!)![1])
  })

  it('has `binge start` as its entry point, the config path from BINGE_CONFIG', () => {
    const entry = JSON.parse(last('ENTRYPOINT')!.args) as string[]
    expect(entry.slice(0, 2)).toEqual(['/bin/sh', '-c'])
    expect(entry[2]).toBe('exec binge start --config "$BINGE_CONFIG"')
    expect(env.BINGE_CONFIG).toMatch(/^\/.+\.yaml$/)
    expect(workdir).toMatch(/^\//)
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
    requireBuilt(binary, 'npm run build:binary')
    const entry = JSON.parse(last('ENTRYPOINT')!.args) as string[]
    const health = /CMD\s+(\[.*\])\s*$/.exec(last('HEALTHCHECK')!.args)
    expect(health, 'HEALTHCHECK ... CMD ["..."]').not.toBeNull()
    const check = JSON.parse(health![1]!) as string[]
    // binge healthcheck: GET /healthz on the port of $BINGE_HTTP_LISTEN.
    expect(check).toEqual(['binge', 'healthcheck'])

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'binge-entrypoint-'))
    dirs.push(dir)
    const [http, closed] = [await freePort(), await freePort()]
    // The image's /usr/local/bin: the binary and nothing else.
    const bin = path.join(dir, 'bin')
    fs.mkdirSync(bin)
    fs.symlinkSync(binary, path.join(bin, 'binge'))
    const containerEnv = {
      ...cleanEnv(env),
      PATH: bin,
      HOME: dir,
      XDG_CACHE_HOME: path.join(dir, 'cache'),
      BINGE_CONFIG: path.join(meshConfigsDir, 'node-c.yaml'),
      BINGE_HTTP_LISTEN: `127.0.0.1:${http}`,
      BINGE_MESH_LISTEN: '/ip4/127.0.0.1/tcp/0',
      BINGE_BOOTSTRAP: `127.0.0.1:${closed}`,
      BINGE_DATA_DIR: path.join(dir, 'data'),
      BINGE_OUT_DIR: path.join(dir, 'out'),
    }
    const healthy = () => spawnSync(check[0]!, check.slice(1), { env: containerEnv, timeout: 10_000 }).status === 0
    expect(healthy()).toBe(false)

    // As the container runs it.
    const child = spawn(entry[0]!, entry.slice(1), { env: containerEnv, stdio: ['ignore', 'ignore', 'pipe'] })
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
    const code = await exited
    expect(code, stderr).toBe(0)
    expect(stderr).toContain('The node stopped cleanly.')
    expect(healthy()).toBe(false)
  })
})

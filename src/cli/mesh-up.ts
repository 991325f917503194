// `binge mesh up [DIR]`: every *.yaml in DIR becomes a local `binge start` child, the
// same topology docker-compose.yml runs in containers. A NAME.env file beside NAME.yaml
// (KEY=VALUE lines, as compose's env_file) sets that node's own variables, so one
// folder of configs can run on other ports without editing them. It waits for each
// /readyz, then for the mesh to form, prints node -> URL and peers, and on Ctrl-C,
// SIGTERM or SIGHUP stops every child by PID and waits for each: nothing is left
// running. A second Ctrl-C kills them at once (their queues are crash-safe).
// When a node reads or writes MQTT at BINGE_MQTT_URL (the example IoT node does) and the
// shell does not set it, a mosquitto is started beside the nodes on `--mqtt` (default
// 127.0.0.1:1884, beside a system broker on 1883) when `mosquitto` is on the PATH; when
// it is not, mesh up says how to get one, and the nodes start anyway (they reconnect).
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, delimiter, dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { loadConfig, splitHostPort } from '../config/index.js'
import { newMeshKey } from './keys.js'
import { fetchStats, formatTable } from './status.js'
import { reportConfigError } from './validate.js'

const colours = [36, 33, 35, 32, 34, 31]
const readyTimeoutMs = 60_000
const meshTimeoutMs = 30_000
const stopTimeoutMs = 15_000

export interface MeshUpOptions {
  /**
   * The binge CLI each node runs (`binge start`): the file of the running CLI, built or
   * bundled; undefined when the executable itself is binge (dist/binge), which then runs
   * the nodes (`binge start`) and the receiver (`binge webhook-receiver`) too.
   */
  cli?: string
  /** Also run the example webhook receiver on this host:port, and point the nodes' BINGE_WEBHOOK_URL at it. */
  webhookReceiver?: string
  /** Pass the nodes' JSON log lines through as they are, instead of a short readable form. */
  json?: boolean
  /** Where a mosquitto for the nodes listens (HOST:PORT), when one is started; default 127.0.0.1:1884. */
  mqtt?: string
}

/** The mosquitto binary on the PATH (or in an sbin directory, where Debian puts it). */
function findMosquitto(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/opt/homebrew/sbin']
  for (const dir of dirs) {
    const candidate = join(dir, 'mosquitto')
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {}
  }
  return undefined
}

/** The MQTT broker URLs a node's inputs and outputs use. */
function mqttUrls(config: { inputs: readonly object[]; pipelines: Record<string, { outputs: readonly object[] }> }): string[] {
  const urls: string[] = []
  const of = (item: object) => (item as { mqtt?: { url?: string } }).mqtt?.url
  for (const input of config.inputs) urls.push(of(input) ?? '')
  for (const p of Object.values(config.pipelines)) for (const o of p.outputs) urls.push(of(o) ?? '')
  return urls.filter(Boolean)
}

interface Member {
  name: string
  url: string
  /** Has a mesh section: expected to meet every other such member. */
  meshed: boolean
  child: ChildProcess
  exited: Promise<number | null>
}

/** KEY=VALUE lines; `#` comments, blank lines, `export ` and quotes around the value allowed. */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line)
    if (!m) throw new Error(`expected KEY=VALUE, got "${line}"`)
    env[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, '$2')
  }
  return env
}

/** scripts/webhook-receiver.mjs of the package the CLI belongs to (dist/ or dist/src/cli/ inside it). */
function receiverScript(cli: string): string {
  let dir = dirname(realpathSync(cli))
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir)
  return join(dir, 'scripts', 'webhook-receiver.mjs')
}

function urlOf(listen: string): string {
  const { host, port } = splitHostPort(listen) ?? { host: '127.0.0.1', port: 8080 }
  const reachable = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`
}

const useColour = (process.stdout.isTTY && !process.env.NO_COLOR) || Boolean(process.env.FORCE_COLOR)
const paint = (code: number, text: string) => (useColour ? `\x1b[${code}m${text}\x1b[0m` : text)
const levels: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }
const quiet = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'node'])

/** A pino line as `12:00:01.234 INFO  The node is ready. pipelines=["a"]`; anything else as it is. */
export function readableLogLine(line: string): string {
  let entry: Record<string, unknown>
  try {
    entry = JSON.parse(line) as Record<string, unknown>
  } catch {
    return line
  }
  if (entry === null || typeof entry !== 'object' || typeof entry.msg !== 'string') return line
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 23) : ''
  const level = (levels[Number(entry.level)] ?? String(entry.level)).padEnd(5)
  const fields = Object.entries(entry)
    .filter(([k]) => !quiet.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
  const coloured = Number(entry.level) >= 50 ? paint(31, level) : Number(entry.level) >= 40 ? paint(33, level) : level
  return [time, coloured, entry.msg, ...fields].filter((s) => s !== '').join(' ')
}

function prefixLines(stream: NodeJS.ReadableStream, prefix: string, out: NodeJS.WritableStream, format: (l: string) => string): void {
  createInterface({ input: stream }).on('line', (line) => out.write(`${prefix} ${format(line)}\n`))
}

function exitedWithin(m: Member, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const wait = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)))
  return Promise.race([m.exited.then(() => true), wait]).finally(() => clearTimeout(timer))
}

async function waitReady(m: Member, path: string, deadline: number): Promise<boolean> {
  while (Date.now() < deadline) {
    const ok = await fetch(`${m.url}${path}`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) return true
    if (await exitedWithin(m, 200)) return false
  }
  return false
}

/** Each meshed member's connected peers, once every one sees all the others (or at the deadline). */
async function waitMesh(
  members: Member[],
  deadline: number,
  stopping: () => boolean,
): Promise<{ formed: boolean; peers: Map<Member, string[]> }> {
  const meshed = members.filter((m) => m.meshed)
  for (;;) {
    const peers = new Map<Member, string[]>()
    const names = new Map<Member, string>()
    await Promise.all(
      meshed.map(async (m) => {
        const stats = await fetchStats(m.url).catch(() => undefined)
        if (!stats) return
        names.set(m, stats.node)
        peers.set(
          m,
          stats.peers
            .filter((p) => p.connected)
            .map((p) => p.node)
            .sort(),
        )
      }),
    )
    const formed = meshed.every((m) => {
      const others = meshed.filter((o) => o !== m).map((o) => names.get(o))
      return others.every((n) => n !== undefined && peers.get(m)?.includes(n))
    })
    if (formed || stopping() || Date.now() >= deadline) return { formed, peers }
    await new Promise((r) => setTimeout(r, 250))
  }
}

/**
 * A mosquitto for the nodes that use MQTT, on `listen`, with a config of its own in a temp
 * dir (anonymous, loopback or wherever `listen` says, no persistence: it lives as long as
 * the mesh); undefined, after saying how to get one, when mosquitto is not installed.
 */
function startBroker(listen: string, users: string[], index: number): Member | undefined {
  const binary = findMosquitto()
  const { host, port } = splitHostPort(listen)!
  const url = `mqtt://${host}:${port}`
  if (!binary) {
    process.stderr.write(
      `binge mesh up: ${users.join(', ')} ${users.length === 1 ? 'uses' : 'use'} MQTT at ${url}, but mosquitto is not on the PATH. ` +
        'Install it (Debian/Ubuntu: apt-get install mosquitto; macOS: brew install mosquitto) or set BINGE_MQTT_URL to a broker you run; ' +
        'the nodes start anyway and connect once a broker is there.\n',
    )
    return undefined
  }
  const dir = mkdtempSync(join(tmpdir(), 'binge-mesh-mosquitto-'))
  const conf = join(dir, 'mosquitto.conf')
  writeFileSync(conf, `listener ${port} ${host}\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nlog_dest stderr\n`)
  const member = spawnMember('mosquitto', index, ['-c', conf], process.env, url, false, (l) => l, binary)
  void member.exited.then(() => rmSync(dir, { recursive: true, force: true }))
  return member
}

function spawnMember(
  name: string,
  index: number,
  args: string[],
  env: NodeJS.ProcessEnv,
  url: string,
  meshed: boolean,
  format: (l: string) => string,
  command = process.execPath,
): Member {
  // Own process group: a terminal's Ctrl-C reaches only us, and we stop each child once.
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env })
  const prefix = paint(colours[index % colours.length]!, `${name.padEnd(8)} |`)
  prefixLines(child.stdout!, prefix, process.stdout, format)
  prefixLines(child.stderr!, prefix, process.stderr, format)
  child.on('error', (err) => process.stderr.write(`binge mesh up: ${name} could not start: ${err.message}\n`))
  // 'close': the child has exited and its last log lines have been read.
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)))
  return { name, url, meshed, child, exited }
}

export async function runMeshUp(dirArg: string | undefined, options: MeshUpOptions): Promise<number> {
  const dir = resolve(dirArg ?? 'mesh-configs')
  let files: string[]
  try {
    files = readdirSync(dir)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort()
      .map((f) => join(dir, f))
  } catch (err) {
    process.stderr.write(`binge mesh up: cannot read ${dir}: ${(err as Error).message}\n`)
    return 2
  }
  if (files.length === 0) {
    process.stderr.write(`binge mesh up: no *.yaml node configs in ${dir}\n`)
    return 2
  }
  const shared: NodeJS.ProcessEnv = { ...process.env }
  // The nodes of one `mesh up` share a key made for this run, unless the shell gives one
  // (the example configs' fallback key is public).
  shared.BINGE_MESH_KEY ||= newMeshKey()
  const receiverListen = options.webhookReceiver
  const cli = options.cli
  const receiverPath = cli === undefined ? undefined : receiverScript(cli)
  if (receiverListen !== undefined) {
    if (!splitHostPort(receiverListen)) {
      process.stderr.write(`binge mesh up: --webhook-receiver expects HOST:PORT, got "${receiverListen}"\n`)
      return 2
    }
    if (receiverPath !== undefined && !existsSync(receiverPath)) {
      process.stderr.write(`binge mesh up: --webhook-receiver needs ${receiverPath}, which is missing\n`)
      return 2
    }
    shared.BINGE_WEBHOOK_URL ||= urlOf(receiverListen)
  }
  const mqttListen = options.mqtt ?? '127.0.0.1:1884'
  const mqttAddress = splitHostPort(mqttListen)
  if (!mqttAddress?.host) {
    process.stderr.write(`binge mesh up: --mqtt expects HOST:PORT, got "${mqttListen}"\n`)
    return 2
  }
  // The shell's own broker wins; otherwise the nodes meet the one started here.
  const ownBroker = !shared.BINGE_MQTT_URL
  shared.BINGE_MQTT_URL ||= `mqtt://${mqttAddress.host}:${mqttAddress.port}`
  const mqttUsers: string[] = []

  // Validate every node with its own environment first: nothing starts half-configured.
  const plans: Array<{ name: string; file: string; env: NodeJS.ProcessEnv; url: string; meshed: boolean }> = []
  const taken = new Map<string, string>()
  if (receiverListen !== undefined) taken.set(`HTTP port ${splitHostPort(receiverListen)?.port}`, 'the webhook receiver')
  for (const file of files) {
    const name = basename(file).replace(/\.ya?ml$/, '')
    const envFile = file.replace(/\.ya?ml$/, '.env')
    let env = shared
    try {
      if (existsSync(envFile)) env = { ...shared, ...parseEnvFile(readFileSync(envFile, 'utf8')) }
    } catch (err) {
      process.stderr.write(`binge mesh up: ${envFile}: ${(err as Error).message}\n`)
      return 2
    }
    try {
      const config = loadConfig(file, env)
      plans.push({ name, file, env, url: urlOf(config.http.listen), meshed: config.mesh !== undefined })
      if (mqttUrls(config).includes(shared.BINGE_MQTT_URL)) mqttUsers.push(name)
      // A copied config whose ports were not changed: say so now, not as a crash later.
      const meshPort = /\/tcp\/(\d+)/.exec(config.mesh?.listen ?? '')?.[1]
      for (const port of [`HTTP port ${splitHostPort(config.http.listen)?.port}`, ...(meshPort ? [`mesh port ${meshPort}`] : [])]) {
        if (port.endsWith(' 0')) continue
        const other = taken.get(port)
        if (other) {
          process.stderr.write(`binge mesh up: ${other} and ${name} both listen on ${port}; give each node its own\n`)
          return 2
        }
        taken.set(port, name)
      }
    } catch (err) {
      return reportConfigError(file, err)
    }
  }

  const format = options.json ? (l: string) => l : readableLogLine
  const receiver =
    receiverListen === undefined
      ? undefined
      : spawnMember(
          'webhook',
          plans.length,
          [...(receiverPath === undefined ? ['webhook-receiver'] : [receiverPath]), '--listen', receiverListen],
          shared,
          urlOf(receiverListen),
          false,
          (l) => l,
        )
  const broker = ownBroker && mqttUsers.length > 0 ? startBroker(mqttListen, mqttUsers, plans.length + 1) : undefined
  const self = cli === undefined ? [] : [cli]
  const nodes = plans.map((p, i) => spawnMember(p.name, i, [...self, 'start', '--config', p.file], p.env, p.url, p.meshed, format))
  const members = [...(receiver ? [receiver] : []), ...(broker ? [broker] : []), ...nodes]

  let stopping = false
  const stopAll = async () => {
    if (stopping) return
    stopping = true
    process.stdout.write(
      `\nbinge mesh up: stopping ${members.length} ${members.length === 1 ? 'process' : 'processes'} (Ctrl-C again kills them)\n`,
    )
    for (const m of members) if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGTERM')
    const force = setTimeout(() => killAll('SIGKILL'), stopTimeoutMs)
    await Promise.all(members.map((m) => m.exited))
    clearTimeout(force)
  }
  const killAll = (signal: NodeJS.Signals) => {
    for (const m of members) if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill(signal)
  }
  // If this process dies some other way, its detached children must not outlive it.
  process.once('exit', () => killAll('SIGKILL'))

  const done = new Promise<number>((resolveDone) => {
    const onSignal = () => {
      if (stopping) return killAll('SIGKILL')
      void stopAll().then(() => resolveDone(0))
    }
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal)
    // A process that dies on its own takes the mesh down: a half mesh hides problems.
    for (const m of members)
      void m.exited.then((code) => {
        if (stopping) return
        process.stderr.write(`binge mesh up: ${m.name} exited with code ${code}; stopping the others\n`)
        void stopAll().then(() => resolveDone(1))
      })
  })

  const deadline = Date.now() + readyTimeoutMs
  const receiverUp = receiver ? await waitReady(receiver, '/healthz', deadline) : true
  const ready = await Promise.all(nodes.map((m) => waitReady(m, '/readyz', deadline)))
  if (stopping) return done
  const { formed, peers } = await waitMesh(
    nodes.filter((_, i) => ready[i]),
    Date.now() + meshTimeoutMs,
    () => stopping,
  )
  if (stopping) return done

  const rows = nodes.map((m, i) => {
    const state = ready[i] ? 'ready' : 'NOT READY'
    const seen = !m.meshed ? '(no mesh)' : (peers.get(m) ?? []).join(', ') || '(none yet)'
    return [m.name, m.url, state, seen]
  })
  if (receiver) rows.push([receiver.name, receiver.url, receiverUp ? 'listening' : 'NOT LISTENING', '(GET / shows what arrived)'])
  if (broker) rows.push([broker.name, broker.url, 'started', `(for ${mqttUsers.join(', ')})`])
  const readyCount = ready.filter(Boolean).length
  const summary =
    readyCount < nodes.length
      ? `${readyCount} of ${nodes.length} nodes ready`
      : formed
        ? `${nodes.length} nodes ready, mesh formed`
        : `${nodes.length} nodes ready, mesh not formed after ${meshTimeoutMs / 1000} s`
  process.stdout.write(
    `\nbinge mesh up: ${summary} (Ctrl-C stops them all)\n${formatTable(['NODE', 'HTTP', 'STATE', 'PEERS'], rows, '  ')}\n\n`,
  )
  return done
}

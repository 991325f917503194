// Real brokers for the input and output tests: mosquitto, nats-server (JetStream) and
// redis-server, each started by the test on a free loopback port with its own config and
// data in a temp dir (never the system services on 1883/4222/6379). A missing binary
// fails the test with the Debian package that provides it. Every broker started here is
// stopped by pid in `stopAllBrokers` (call it from afterEach/afterAll); a restart keeps
// the port and the data dir.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { makeTempDir, waitFor } from './node-process.js'
import { freePort } from './ports.js'

export { freePort }

const packages = { mosquitto: 'mosquitto', 'nats-server': 'nats-server', 'redis-server': 'redis-server' } as const
type BrokerBinary = keyof typeof packages

/** The path of `binary`, or an error naming the Debian package to install. */
export function requireBinary(binary: BrokerBinary): string {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin']
  for (const dir of dirs) {
    const candidate = path.join(dir, binary)
    try {
      fs.accessSync(candidate, fs.constants.X_OK)
      return candidate
    } catch {}
  }
  throw new Error(`${binary} is not installed: install the Debian package "${packages[binary]}" (apt-get install -y ${packages[binary]})`)
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

const live = new Set<Broker>()

export class Broker {
  private child?: ChildProcess
  private readonly output: string[] = []

  constructor(
    readonly name: BrokerBinary,
    readonly port: number,
    readonly dir: string,
    private readonly args: string[],
  ) {}

  get pid(): number | undefined {
    return this.child?.pid
  }

  async start(): Promise<this> {
    const binary = requireBinary(this.name)
    const child = spawn(binary, this.args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    live.add(this)
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8')
      stream?.on('data', (chunk: string) => {
        this.output.push(chunk)
        if (this.output.length > 200) this.output.shift()
      })
    }
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`${this.name} exited with ${child.exitCode}: ${this.output.join('')}`)
        return portOpen(this.port)
      },
      { what: `${this.name} listening on ${this.port}`, timeoutMs: 20_000 },
    )
    return this
  }

  /** Stop by pid and wait for the exit (SIGTERM lets it save; SIGKILL does not). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill(signal)
    await exited
    live.delete(this)
  }

  async restart(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.stop(signal)
    await this.start()
  }

  logs(): string {
    return this.output.join('')
  }
}

export async function stopAllBrokers(): Promise<void> {
  await Promise.allSettled([...live].map((b) => b.stop('SIGKILL')))
}

export interface MosquittoOptions {
  /** Keep messages and sessions across a graceful restart (SIGTERM), in the temp dir. */
  persistence?: boolean
  /** TLS only (mqtts://), with a self-signed certificate for 127.0.0.1 made here (`cert` is its PEM path, to trust as a CA). */
  tls?: boolean
  /** Refuse anonymous clients; these users may connect (mosquitto_passwd makes the file). */
  users?: Record<string, string>
  /** Messages in flight per client (mosquitto's default is 20). */
  maxInflight?: number
}

/** A mosquitto on a free port: anonymous, no queue limit for offline persistent sessions. */
export async function startMosquitto(options: MosquittoOptions = {}): Promise<Broker & { url: string; cert?: string }> {
  requireBinary('mosquitto')
  const port = await freePort()
  const dir = makeTempDir('binge-mosquitto-')
  // Started as root, mosquitto drops to its own user: it must still read and write here.
  fs.chmodSync(dir, 0o777)
  const cert = path.join(dir, 'cert.pem')
  if (options.tls) {
    const key = path.join(dir, 'key.pem')
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'pipe' },
    )
  }
  if (options.users) {
    const file = path.join(dir, 'passwords')
    fs.writeFileSync(file, '')
    for (const [user, password] of Object.entries(options.users))
      execFileSync('mosquitto_passwd', ['-b', file, user, password], { stdio: 'pipe' })
  }
  const config = [
    `listener ${port} 127.0.0.1`,
    ...(options.tls ? [`certfile ${cert}`, `keyfile ${path.join(dir, 'key.pem')}`] : []),
    ...(options.users ? ['allow_anonymous false', `password_file ${path.join(dir, 'passwords')}`] : ['allow_anonymous true']),
    'max_queued_messages 0',
    `max_inflight_messages ${options.maxInflight ?? 20}`,
    options.persistence ? 'persistence true' : 'persistence false',
    ...(options.persistence ? [`persistence_location ${dir}/`] : []),
    'log_dest stderr',
    'log_type error',
    'log_type warning',
  ]
  fs.writeFileSync(path.join(dir, 'mosquitto.conf'), `${config.join('\n')}\n`)
  for (const file of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, file), 0o644)
  const broker = new Broker('mosquitto', port, dir, ['-c', path.join(dir, 'mosquitto.conf')])
  await broker.start()
  return Object.assign(broker, { url: `${options.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`, ...(options.tls ? { cert } : {}) })
}

/** A nats-server with JetStream storing in the temp dir. */
export async function startNats(): Promise<Broker & { url: string }> {
  requireBinary('nats-server')
  const port = await freePort()
  const dir = makeTempDir('binge-nats-')
  const broker = new Broker('nats-server', port, dir, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir])
  await broker.start()
  return Object.assign(broker, { url: `nats://127.0.0.1:${port}` })
}

/** A redis-server with its data in the temp dir; `appendonly` turns the AOF on. */
export async function startRedis(options: { appendonly?: boolean } = {}): Promise<Broker & { url: string }> {
  requireBinary('redis-server')
  const port = await freePort()
  const dir = makeTempDir('binge-redis-')
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    options.appendonly ? 'yes' : 'no',
  ]
  const broker = new Broker('redis-server', port, dir, args)
  await broker.start()
  return Object.assign(broker, { url: `redis://127.0.0.1:${port}` })
}

/** The redis-server version, e.g. [7, 0, 15]. */
export function redisVersion(): number[] {
  const out = execFileSync(requireBinary('redis-server'), ['--version'], { encoding: 'utf8' })
  return (/v=(\d+)\.(\d+)\.(\d+)/.exec(out) ?? []).slice(1).map(Number)
}

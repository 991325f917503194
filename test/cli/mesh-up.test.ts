// `binge mesh up` as a newcomer runs it, on a copy of the repo's mesh-configs/: free
// ports come from a NAME.env beside each NAME.yaml (the YAML is not edited), the
// topology from the files' own defaults. The mesh forms and says so with each node's
// peers; an event POSTed to each node (the relay included, routed by pipeline) comes
// out of an output; `binge status` shows the mesh; SIGINT stops everything, and every
// child pid is gone afterwards.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/index.js'
import { cleanEnv, loadExample, meshConfigFiles, portOf, requireBuiltCli, tcpPortOf, withoutWindowSteps } from '../deploy/deploy-support.js'
import mqtt from 'mqtt'
import { requireBinary } from '../support/brokers.js'
import { waitFor } from '../support/node-process.js'
import { reservePorts } from '../support/ports.js'

let meshUp: ChildProcess | undefined
let childPids: number[] = []
let tmp: string | undefined

afterEach(async () => {
  // Only if the test failed half-way: nothing it started may outlive it.
  if (meshUp && meshUp.exitCode === null && meshUp.signalCode === null) meshUp.kill('SIGKILL')
  for (const pid of childPids) if (alive(pid)) process.kill(pid, 'SIGKILL')
  meshUp = undefined
  childPids = []
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  tmp = undefined
})

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}

/** Pids whose parent is `ppid`, with their command lines (Linux /proc). */
function childrenOf(ppid: number): Array<{ pid: number; cmd: string }> {
  const found: Array<{ pid: number; cmd: string }> = []
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8')
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (parent === ppid) found.push({ pid: Number(entry), cmd: fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ') })
    } catch {
      // gone meanwhile
    }
  }
  return found
}

async function post(url: string, body: unknown): Promise<number> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  await res.text()
  return res.status
}

const pr = (number: number) => ({
  action: 'opened',
  number,
  pull_request: { title: `PR ${number}`, merged: false, html_url: `https://github.com/acme/edge/pull/${number}`, user: { login: 'ada' } },
  repository: { full_name: 'acme/edge' },
})

describe('binge mesh up', () => {
  it('runs the repo mesh-configs on free ports, forms the mesh, processes events posted to every node, and leaves nothing running after SIGINT', async () => {
    const bin = requireBuiltCli()
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'binge-mesh-up-'))
    const dir = path.join(tmp, 'mesh-configs')
    fs.mkdirSync(dir)

    // The copies, and for each a NAME.env moving it to free ports along the same edges.
    const files = meshConfigFiles()
    const names = [...files.keys()]
    const ports = await reservePorts(names.length * 2 + 2)
    const http = new Map(names.map((n, i) => [n, ports[i]!]))
    const mesh = new Map(names.map((n, i) => [n, ports[names.length + i]!]))
    const webhookPort = ports.at(-2)!
    // mesh up starts a mosquitto here for node-a's MQTT input (mosquitto is on the PATH: .ci/run installs it).
    const mqttPort = ports.at(-1)!
    requireBinary('mosquitto')
    const defaults = new Map(names.map((n) => [n, loadExample(files.get(n)!, cleanEnv())]))
    const byLocalMeshPort = new Map(names.map((n) => [tcpPortOf(defaults.get(n)!.config.mesh!.listen), n]))
    for (const [name, file] of files) {
      const { config, tolerated } = defaults.get(name)!
      const text = fs.readFileSync(file, 'utf8')
      if (tolerated) console.warn(`tolerated: ${tolerated}`)
      fs.writeFileSync(path.join(dir, path.basename(file)), tolerated ? withoutWindowSteps(text) : text)
      const bootstrap = config.mesh?.bootstrap ?? []
      expect(bootstrap.length).toBeLessThanOrEqual(1)
      const env = [`BINGE_HTTP_LISTEN=127.0.0.1:${http.get(name)}`, `BINGE_MESH_LISTEN=/ip4/127.0.0.1/tcp/${mesh.get(name)}`]
      if (bootstrap[0]) env.push(`BINGE_BOOTSTRAP=127.0.0.1:${mesh.get(byLocalMeshPort.get(portOf(bootstrap[0]))!)}`)
      fs.writeFileSync(path.join(dir, `${name}.env`), `# free ports for this test\n${env.join('\n')}\n`)
      // The file must really read them, or the test would quietly run on the default ports.
      const moved = loadConfig(
        path.join(dir, path.basename(file)),
        cleanEnv(Object.fromEntries(env.map((l) => l.split('=') as [string, string]))),
      )
      expect(portOf(moved.http.listen)).toBe(http.get(name))
    }
    const url = (name: string) => `http://127.0.0.1:${http.get(name)}`

    let output = ''
    meshUp = spawn(
      process.execPath,
      [bin, 'mesh', 'up', dir, '--webhook-receiver', `127.0.0.1:${webhookPort}`, '--mqtt', `127.0.0.1:${mqttPort}`],
      {
        cwd: tmp,
        env: cleanEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    const exited = new Promise<number | null>((r) => meshUp!.once('exit', (code) => r(code)))
    meshUp.stdout!.on('data', (c: Buffer) => (output += c.toString()))
    meshUp.stderr!.on('data', (c: Buffer) => (output += c.toString()))
    const fail = (why: string) => new Error(`${why}\n--- mesh up output ---\n${output.slice(-6000)}`)

    const started = await waitFor(
      () => {
        // An exit ends the wait at once (waitFor retries a probe that throws).
        if (meshUp!.exitCode !== null) return { exitCode: meshUp!.exitCode }
        return /binge mesh up: .*\(Ctrl-C stops them all\)/.test(output) && { exitCode: null }
      },
      { what: 'the mesh table', timeoutMs: 75_000 },
    ).catch((err: Error) => {
      throw fail(err.message)
    })
    if (started.exitCode !== null) throw fail(`mesh up exited with ${started.exitCode}`)
    expect(output, output).toContain(`binge mesh up: ${names.length} nodes ready, mesh formed`)
    for (const name of names) {
      const row = new RegExp(`^  ${name}\\s+(\\S+)\\s+ready\\s+(.+)$`, 'm').exec(output)
      expect(row, `a table row for ${name}`).not.toBeNull()
      expect(row![1]).toBe(url(name))
      expect(row![2]!.split(', ').sort()).toEqual(names.filter((n) => n !== name))
    }
    expect(output).toMatch(new RegExp(`^  webhook\\s+http://127\\.0\\.0\\.1:${webhookPort}\\s+listening`, 'm'))

    expect(output).toMatch(new RegExp(`^  mosquitto\\s+mqtt://127\\.0\\.0\\.1:${mqttPort}\\s+started\\s+\\(for node-a\\)`, 'm'))

    // Every child, by pid: three nodes, the receiver and mosquitto.
    const children = childrenOf(meshUp.pid!)
    childPids = children.map((c) => c.pid)
    expect(children.filter((c) => / start --config /.test(c.cmd))).toHaveLength(names.length)
    expect(children.filter((c) => /webhook-receiver\.mjs/.test(c.cmd))).toHaveLength(1)
    expect(children.filter((c) => /mosquitto -c /.test(c.cmd))).toHaveLength(1)
    expect(children).toHaveLength(names.length + 2)

    // One or more events into every node; the relay's by pipeline name.
    const readings = [
      { type: 'temperature', sensor: 'mu-1', room: 'lab', celsius: 19 },
      { type: 'temperature', sensor: 'mu-2', room: 'server-room', celsius: 47 },
    ]
    expect(await post(`${url('node-a')}/events`, readings)).toBe(202)
    expect(await post(`${url('node-b')}/events`, pr(11))).toBe(202)
    expect(await post(`${url('node-c')}/events/pull-requests`, pr(77))).toBe(202)
    expect(await post(`${url('node-c')}/events/temperature-raw`, { type: 'temperature', sensor: 'mu-3', room: 'hall', celsius: 22 })).toBe(
      202,
    )
    // And one reading over MQTT, into node-a's subscription on the broker mesh up started.
    const sensor = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { protocolVersion: 5 })
    await sensor.publishAsync('sensors/lab/mu-4', JSON.stringify({ type: 'temperature', sensor: 'mu-4', room: 'lab', celsius: 20 }), {
      qos: 1,
    })
    await sensor.endAsync()

    const rawFile = path.join(tmp, 'out', 'node-a', 'temperature.jsonl')
    const raw = await waitFor(
      () => {
        const lines = fs.existsSync(rawFile) ? fs.readFileSync(rawFile, 'utf8').split('\n').filter(Boolean) : []
        const records = lines.map((l) => JSON.parse(l) as { node: string; origin: string; data: { sensor: string } })
        return records.length >= 4 && records
      },
      { what: "four readings in node-a's file", timeoutMs: 20_000 },
    ).catch((err: Error) => {
      throw fail(err.message)
    })
    expect(raw.map((r) => r.data.sensor).sort()).toEqual(['mu-1', 'mu-2', 'mu-3', 'mu-4'])
    expect(raw.find((r) => r.data.sensor === 'mu-3')).toMatchObject({ node: 'node-a', origin: 'node-c' })

    type Arrival = { path: string; body: { node: string; origin: string; data: Record<string, unknown> } }
    const arrivals = await waitFor(
      async () => {
        const got = ((await (await fetch(`http://127.0.0.1:${webhookPort}/`)).json()) as { last: Arrival[] }).last
        const notices = got.filter((a) => a.path === '/saas/notices').map((a) => a.body.data.number)
        return notices.includes(11) && notices.includes(77) && got.some((a) => a.path === '/iot/overheat') && got
      },
      { what: 'the notices and the overheat at the receiver', timeoutMs: 20_000 },
    ).catch((err: Error) => {
      throw fail(err.message)
    })
    expect(arrivals.find((a) => a.body.data.number === 77)?.body).toMatchObject({ node: 'node-b', origin: 'node-c' })
    expect(arrivals.filter((a) => a.path === '/iot/overheat').map((a) => a.body.data.sensor)).toEqual(['mu-2'])
    // The receiver's lines and the nodes' logs come out prefixed with their names.
    expect(output).toMatch(/^webhook\s+\| \/saas\/notices node-b\/pull-requests/m)
    expect(output).toMatch(/^node-a\s+\| \S+ INFO {2}The node is ready\./m)
    // Data where the files put it by default: ./data/NAME under the working directory.
    for (const name of names) expect(fs.existsSync(path.join(tmp, 'data', name)), `data/${name}`).toBe(true)

    // `binge status` of one node shows the other two.
    const status = spawnSync(process.execPath, [bin, 'status', '--url', url('node-a')], { encoding: 'utf8', timeout: 60_000 })
    expect(status.status, status.stderr).toBe(0)
    expect(status.stdout).toMatch(/^node-a {2}http:\/\/127\.0\.0\.1:\d+ {2}ready/)
    for (const other of ['node-b', 'node-c'])
      expect(status.stdout).toMatch(new RegExp(`^${other}\\s+${url(other).replace(/\./g, '\\.')}\\s+yes\\s`, 'm'))

    // Ctrl-C: everything stops, nothing is left.
    meshUp.kill('SIGINT')
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000))])
    expect(code, output.slice(-3000)).toBe(0)
    for (const pid of childPids) expect(alive(pid), `child ${pid} after SIGINT`).toBe(false)
    expect(output).toMatch(/^node-[abc]\s+\| \S+ INFO {2}The node stopped cleanly\./m)
  })
})

// docker-compose.yml, read without a Docker engine: every node service runs its own
// mesh-configs/ file (which validates with the service's environment), has its own data
// volume where the config puts its data, publishes the HTTP port the same file uses
// locally, and bootstraps by service name along the same edges the local defaults
// use, so `docker compose up` and `npm start` (binge mesh up) run one topology. The
// commented fourth service is checked too, uncommented, so the recipe stays right.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Config } from '../../src/config/index.js'
import {
  cleanEnv,
  composePath,
  loadExample,
  meshConfigFiles,
  mounts,
  nodeServices,
  portOf,
  publishedPorts,
  readCompose,
  repoRoot,
  serviceEnv,
  tcpPortOf,
  type ComposeFile,
  type ComposeService,
} from './deploy-support.js'

const compose = readCompose()
const files = meshConfigFiles()
const nodes = nodeServices(compose)
const local = new Map([...files].map(([name, file]) => [name, loadExample(file, cleanEnv()).config]))
const inCompose = new Map(nodes.map(([name, s]) => [name, loadExample(files.get(name) ?? 'missing', cleanEnv(serviceEnv(s))).config]))

/** Which node each node bootstraps from, by name: `to(entry)` maps a bootstrap entry to a node. */
function edges(configs: Map<string, Config>, to: (entry: string) => string | undefined): string[] {
  return [...configs].flatMap(([name, c]) => (c.mesh?.bootstrap ?? []).map((b) => `${name} -> ${to(b) ?? `?${b}`}`)).sort()
}

function outputUrls(c: Config): string[] {
  const urls: string[] = []
  for (const p of Object.values(c.pipelines)) {
    for (const o of p.outputs) if ('http' in o) urls.push((o.http as { url: string }).url)
    const then = p.onFail.then
    if (typeof then === 'object' && 'alert' in then) urls.push((then.alert as { webhook?: string } | null)?.webhook ?? '')
  }
  return urls
}

describe('docker-compose.yml', () => {
  it('has one node service per mesh-configs/ file, plus the webhook receiver and the MQTT broker', () => {
    expect(nodes.map(([name]) => name).sort()).toEqual([...files.keys()].sort())
    const webhook = compose.services.webhook!
    // The image holds the binary and no Node: the receiver is a binge command.
    expect(webhook.entrypoint).toEqual(['binge', 'webhook-receiver'])
    expect(webhook.healthcheck?.test.slice(0, 3)).toEqual(['CMD', 'binge', 'healthcheck'])
    expect(fs.existsSync(path.join(repoRoot, 'scripts', 'webhook-receiver.mjs'))).toBe(true)
    // One image for all binge services: the receiver runs from the binge image; the broker is Mosquitto's.
    const { mosquitto, ...ours } = compose.services
    const images = new Set(Object.values(ours).map((s) => `${String(s.build)} ${s.image}`))
    expect([...images]).toEqual(['. binge:local'])
    expect(mosquitto?.image).toMatch(/^eclipse-mosquitto:2/)
  })

  it('runs a Mosquitto that every MQTT input and output of the example reaches by service name, as locally on 1884', () => {
    const broker = compose.services.mosquitto!
    expect(publishedPorts(broker)).toEqual([{ host: 1884, container: 1883 }])
    expect(String(broker.command)).toMatch(/listener 1883/)
    let users = 0
    for (const [name, s] of nodes) {
      for (const item of inCompose.get(name)!.inputs) {
        const url = (item as { mqtt?: { url: string } }).mqtt?.url
        if (url === undefined) continue
        users++
        expect(url).toBe('mqtt://mosquitto:1883')
        expect(s.depends_on).toContain('mosquitto')
        expect((local.get(name)!.inputs[0] as { mqtt: { url: string } }).mqtt.url).toBe('mqtt://127.0.0.1:1884')
      }
    }
    expect(users).toBeGreaterThan(0)
  })

  it('mounts each node its own config, read-only, where BINGE_CONFIG says, and it validates there', () => {
    for (const [name, s] of nodes) {
      const env = serviceEnv(s)
      const config = mounts(s).find((m) => m.target === env.BINGE_CONFIG)
      expect(config, `${name}: a mount at BINGE_CONFIG`).toEqual({
        source: `./mesh-configs/${name}.yaml`,
        target: env.BINGE_CONFIG,
        mode: 'ro',
      })
      expect(fs.existsSync(path.join(repoRoot, config!.source))).toBe(true)
      expect(inCompose.get(name)!.node.id).toBe(name)
    }
  })

  it('gives each node its own named volume, where its config keeps its data and file outputs', () => {
    const declared = Object.keys(compose.volumes ?? {})
    const used = new Set<string>()
    for (const [name, s] of nodes) {
      const config = inCompose.get(name)!
      const data = mounts(s).find((m) => m.target === config.node.dataDir)
      expect(data, `${name}: a volume at its dataDir ${config.node.dataDir}`).toBeDefined()
      expect(declared).toContain(data!.source)
      expect(used.has(data!.source), `${name}: its own volume`).toBe(false)
      used.add(data!.source)
      for (const p of Object.values(config.pipelines)) {
        for (const o of p.outputs)
          if ('file' in o) expect((o.file as { path: string }).path.startsWith(`${config.node.dataDir}/`)).toBe(true)
      }
    }
  })

  it('publishes each node on the HTTP port its config uses locally, mapped to the port it listens on inside', () => {
    const hostPorts = Object.values(compose.services).flatMap((s) => publishedPorts(s).map((p) => p.host))
    expect(new Set(hostPorts).size).toBe(hostPorts.length)
    for (const [name, s] of nodes) {
      expect(publishedPorts(s)).toEqual([
        { host: portOf(local.get(name)!.http.listen), container: portOf(inCompose.get(name)!.http.listen) },
      ])
    }
    expect(nodes.map(([name]) => portOf(local.get(name)!.http.listen))).toEqual([8081, 8082, 8083])
  })

  it('keeps the mesh port on the compose network and bootstraps by service name, along the same edges as the local mesh', () => {
    const meshPort = new Map(nodes.map(([name]) => [name, tcpPortOf(inCompose.get(name)!.mesh!.listen)]))
    for (const [name, s] of nodes) {
      expect(s.expose?.map(String)).toEqual([String(meshPort.get(name))])
      expect(publishedPorts(s).some((p) => p.container === meshPort.get(name))).toBe(false)
    }
    const composeEdges = edges(inCompose, (entry) => {
      const [host, port] = entry.split(':')
      return meshPort.get(host!) === Number(port) ? host : undefined
    })
    const localPorts = new Map([...local].map(([name, c]) => [tcpPortOf(c.mesh!.listen), name]))
    expect(localPorts.size).toBe(local.size)
    const localEdges = edges(local, (entry) => (entry.startsWith('127.0.0.1:') ? localPorts.get(portOf(entry)) : undefined))
    expect(composeEdges).toEqual(localEdges)
    expect(composeEdges).toEqual(['node-b -> node-a', 'node-c -> node-b'])
  })

  it('points every webhook of the example pipelines at the receiver, in compose and locally', () => {
    const webhook = compose.services.webhook!
    const port = portOf(serviceEnv(webhook).WEBHOOK_LISTEN!)
    expect(publishedPorts(webhook)).toEqual([{ host: 9000, container: port }])
    for (const [name, s] of nodes) {
      expect(serviceEnv(s).BINGE_WEBHOOK_URL).toBe(`http://webhook:${port}`)
      for (const url of outputUrls(inCompose.get(name)!)) expect(url.startsWith(`http://webhook:${port}/`), url).toBe(true)
      // Locally `npm start` runs the receiver on 127.0.0.1:9000, the default in the files.
      for (const url of outputUrls(local.get(name)!)) expect(url.startsWith('http://127.0.0.1:9000/'), url).toBe(true)
    }
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    expect(pkg.scripts.start).toMatch(/ mesh up mesh-configs --webhook-receiver$/)
  })

  it('shows, commented out, a fourth node that would be right once uncommented', () => {
    const text = fs.readFileSync(composePath, 'utf8')
    const uncommented = text.replace(/^ {2}# (node-d:| {2}.*)$/gm, '  $1').replace(/^ {2}# (node-d-data:)$/m, '  $1')
    const withD: ComposeFile = readCompose(uncommented)
    const d: ComposeService | undefined = withD.services['node-d']
    expect(d, 'node-d once uncommented').toBeDefined()
    const c = compose.services['node-c']!
    expect(Object.keys(d!).sort()).toEqual(Object.keys(c).sort())
    const env = serviceEnv(d!)
    expect(env.BINGE_BOOTSTRAP).toMatch(/^node-[abc]:7000$/)
    expect(mounts(d!)).toEqual([
      { source: './mesh-configs/node-d.yaml', target: env.BINGE_CONFIG, mode: 'ro' },
      { source: 'node-d-data', target: env.BINGE_DATA_DIR },
    ])
    expect(Object.keys(withD.volumes ?? {})).toContain('node-d-data')
    const taken = Object.values(compose.services).flatMap((s) => publishedPorts(s).map((p) => p.host))
    expect(taken).not.toContain(publishedPorts(d!)[0]!.host)
    // It is only an example: `binge mesh up mesh-configs` must not find a node-d.
    expect(files.has('node-d')).toBe(false)
  })
})

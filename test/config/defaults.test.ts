import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfig, parseConfig, type Config } from '../../src/config/index.js'
import type { BingeError } from '../../src/errors.js'

const fixtures = new URL('../fixtures/config/', import.meta.url).pathname
const fixture = (name: string) => path.join(fixtures, name)

const defaults = (): Omit<Config, 'pipelines'> => ({
  node: { id: os.hostname(), dataDir: path.resolve('data', os.hostname()) },
  http: { listen: '0.0.0.0:8080', maxBodyBytes: 1_048_576, maxEventsPerRequest: 10_000, authToken: '', requestTimeout: 30_000 },
  queue: {
    mode: 'durable',
    sync: 'batch',
    highWaterMark: 10_000,
    lowWaterMark: 8_000,
    maxEvents: 100_000,
    maxBytes: 1_073_741_824,
    dedupeWindow: 600_000,
  },
  workers: 4,
  log: { level: 'info' },
  inputs: [],
})

describe('defaults', () => {
  it('a file with only `pipelines:` is a node alone with every default', () => {
    const config = loadConfig(fixture('only-pipelines.yaml'), {})
    expect(config).toEqual({ ...defaults(), pipelines: {} })
    expect(config.mesh).toBeUndefined()
  })

  it('an empty file (or one with only comments) is valid too', () => {
    expect(parseConfig('', '/etc/binge/node.yaml', {})).toEqual({
      ...defaults(),
      pipelines: {},
    })
    expect(parseConfig('# nothing yet\n', '/etc/binge/node.yaml', {}).pipelines).toEqual({})
  })

  it('dataDir defaults to ./data/<id> and resolves against the working directory', () => {
    const config = parseConfig('node: { id: edge-1 }', '/srv/cfg/a.yaml', {})
    expect(config.node).toEqual({ id: 'edge-1', dataDir: path.resolve('data/edge-1') })
    const absolute = parseConfig('node: { dataDir: /var/lib/binge }', '/srv/cfg/a.yaml', {})
    expect(absolute.node.dataDir).toBe('/var/lib/binge')
  })

  it('a `mesh:` with only its key turns the mesh on with its defaults', () => {
    expect(parseConfig('mesh: { psk: k }', 'a.yaml', {}).mesh).toEqual({
      listen: '/ip4/0.0.0.0/tcp/7000',
      bootstrap: [],
      psk: 'k',
      allowPeers: [],
      insecure: false,
      gossipInterval: 1_000,
      maxHops: 2,
      handoffTimeout: 10_000,
      unreachablePeerTimeout: 600_000,
      handoffBatch: 256,
      handoffConcurrency: 4,
    })
  })

  it('a pipeline gets empty steps and outputs and dead-letters its failures', () => {
    const config = parseConfig('pipelines:\n  p:\n  q: { onFail: { retry: {} } }\n', 'a.yaml', {})
    expect(config.pipelines.p).toEqual({ steps: [], outputs: [], onFail: { then: 'deadletter' } })
    expect(config.pipelines.q?.onFail).toEqual({
      retry: { attempts: 3, backoff: 200, maxBackoff: 30_000 },
      then: 'deadletter',
    })
  })

  it('outputs accept `stdout:`, `stdout: {}` and their options', () => {
    const text = [
      'pipelines:',
      '  p:',
      '    outputs:',
      '      - stdout:',
      '      - stdout: {}',
      '      - stdout: { envelope: false }',
      '      - file: { path: ./out.jsonl, rotateBytes: 64MiB }',
    ].join('\n')
    expect(parseConfig(text, 'a.yaml', {}).pipelines.p?.outputs).toEqual([
      { stdout: { envelope: true } },
      { stdout: { envelope: true } },
      { stdout: { envelope: false } },
      { file: { path: './out.jsonl', envelope: true, rotateBytes: 64 * 2 ** 20 } },
    ])
  })

  it('onFail.then takes the bare words and the one-key forms', () => {
    const then = (value: string) =>
      parseConfig(`pipelines:\n  p:\n    onFail:\n      then: ${value}\n`, 'a.yaml', {}).pipelines.p?.onFail.then
    expect(then('drop')).toBe('drop')
    expect(then('alert')).toBe('alert')
    expect(then('{ alert: }')).toEqual({ alert: {} })
    expect(then('{ alert: { webhook: "https://hooks.example/x" } }')).toEqual({
      alert: { webhook: 'https://hooks.example/x' },
    })
    expect(then('{ forward: { url: "http://10.0.0.2:8080/events" } }')).toEqual({
      forward: { url: 'http://10.0.0.2:8080/events' },
    })
  })
})

describe('a full example config, every section written', () => {
  it('is refused with its env vars unset only for want of a mesh key (its mesh listens beyond loopback)', () => {
    let problems: Array<{ path: string }> = []
    try {
      loadConfig(fixture('spec-example.yaml'), {})
    } catch (err) {
      problems = (err as BingeError).details?.problems as Array<{ path: string }>
    }
    expect(problems.map((p) => p.path)).toEqual(['mesh.psk'])
  })

  it('parses with a mesh key and its other env vars unset, taking their empty defaults', () => {
    const config = loadConfig(fixture('spec-example.yaml'), { BINGE_MESH_KEY: 'k' })
    expect(config.node).toEqual({ id: 'node-a', dataDir: path.resolve('data/node-a') })
    expect(config.http).toEqual({
      listen: '0.0.0.0:8080',
      maxBodyBytes: 1_048_576,
      maxEventsPerRequest: 10_000,
      authToken: '',
      requestTimeout: 30_000,
    })
    expect(config.queue).toMatchObject({ mode: 'durable', sync: 'batch', maxBytes: 2 ** 30 })
    expect(config.workers).toBe(4)
    expect(config.mesh).toMatchObject({ bootstrap: ['node-b:7000'], psk: 'k', gossipInterval: 1_000, maxHops: 2 })
    expect(config.pipelines['hot-rooms']).toEqual({
      when: 'type = "temperature"',
      steps: [{ filter: 'celsius > 30' }, { map: '$merge([$, {"fahrenheit": celsius * 9 / 5 + 32}])' }],
      outputs: [
        { file: { path: './out/hot-rooms.jsonl', envelope: true } },
        { http: { url: 'http://127.0.0.1:9000/hook', timeout: 5_000, headers: {}, envelope: true } },
      ],
      onFail: { retry: { attempts: 5, backoff: 200, maxBackoff: 30_000 }, then: 'deadletter' },
    })
  })

  it('takes the token and mesh key from the environment', () => {
    const config = loadConfig(fixture('spec-example.yaml'), { BINGE_TOKEN: 't0k', BINGE_MESH_KEY: 'k3y' })
    expect(config.http.authToken).toBe('t0k')
    expect(config.mesh?.psk).toBe('k3y')
  })
})

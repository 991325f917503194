// The mesh is closed by default: a config whose mesh listens beyond loopback and names
// neither a key nor an allow-list is refused (validate and start: exit 2, the config
// path and how to make a key), `binge keygen` makes a key, `binge id` tells a node's
// peer id before it runs, and `insecure: true` starts an open mesh with a warning.
import { describe, expect, it } from 'vitest'
import { BingeError } from '../../src/errors.js'
import { parseConfig, type ConfigProblem } from '../../src/config/index.js'
import { listensBeyondLoopback } from '../../src/config/closed-mesh.js'
import { cleanUpNodesAfterEach } from '../support/hooks.js'
import { NodeProcess, getJson, makeTempDir, runCli, writeConfig } from '../support/node-process.js'

cleanUpNodesAfterEach()

const cli = (args: string[]) => runCli(args)

function problems(text: string): ConfigProblem[] {
  try {
    parseConfig(text, 'node.yaml', {})
  } catch (err) {
    expect(err).toBeInstanceOf(BingeError)
    return (err as BingeError).details?.problems as ConfigProblem[]
  }
  return []
}

describe('closed by default', () => {
  it('refuses a mesh open beyond loopback without psk or allowPeers, and accepts each way to say who may join', () => {
    for (const open of [
      'mesh:',
      'mesh: { listen: /ip4/0.0.0.0/tcp/7000 }',
      'mesh: { listen: /ip4/10.1.2.3/tcp/7000 }',
      'mesh: { listen: /ip6/::/tcp/7000, psk: "  " }',
    ]) {
      const found = problems(open)
      expect(
        found.map((p) => p.path),
        open,
      ).toEqual(['mesh.psk'])
      expect(found[0]!.message).toContain('binge keygen')
      expect(found[0]!.message).toContain('insecure: true')
    }
    for (const closed of [
      'mesh: { psk: "${BINGE_MESH_KEY:-k}" }',
      'mesh: { allowPeers: [12D3KooWAbc] }',
      'mesh: { insecure: true }',
      'mesh: { listen: /ip4/127.0.0.1/tcp/7000 }',
      'mesh: { listen: /ip6/::1/tcp/7000 }',
    ])
      expect(problems(closed), closed).toEqual([])
    expect(listensBeyondLoopback('/dns4/node-a/tcp/7000')).toBe(true)
    expect(listensBeyondLoopback('/ip4/127.0.0.2/tcp/0')).toBe(false)
  })

  it('binge validate and binge start exit 2 naming the config and the key to set; nothing starts', async () => {
    const dir = makeTempDir('binge-closed-')
    const file = writeConfig(dir, {
      node: { id: 'open', dataDir: `${dir}/data` },
      http: { listen: '127.0.0.1:0' },
      mesh: { listen: '/ip4/0.0.0.0/tcp/0' },
    })
    for (const command of ['validate', 'start']) {
      const result = await cli([command, '--config', file])
      expect(result.code, result.stderr).toBe(2)
      expect(result.stderr).toContain(file)
      expect(result.stderr).toContain('mesh.psk')
      expect(result.stderr).toContain('binge keygen')
    }
  })

  it('binge keygen prints a fresh 64-hex-digit key each time, which a mesh accepts as its psk', async () => {
    const [one, two] = await Promise.all([cli(['keygen']), cli(['keygen'])])
    expect(one.code).toBe(0)
    expect(one.stdout).toMatch(/^[0-9a-f]{64}\n$/)
    expect(two.stdout).toMatch(/^[0-9a-f]{64}\n$/)
    expect(one.stdout).not.toBe(two.stdout)
    expect(problems(`mesh: { psk: ${one.stdout.trim()} }`)).toEqual([])
  })

  it('binge id prints the peer id the node then joins with; insecure: true starts with a warning', async () => {
    const dir = makeTempDir('binge-id-')
    const file = writeConfig(dir, {
      node: { id: 'open', dataDir: `${dir}/data` },
      http: { listen: '127.0.0.1:0' },
      mesh: { listen: '/ip4/0.0.0.0/tcp/0', insecure: true, gossipInterval: '250ms' },
    })
    const id = await cli(['id', '--config', file])
    expect(id.code, id.stderr).toBe(0)
    expect(id.stdout).toMatch(/^12D3Koo\w+\n$/)
    const node = await NodeProcess.start(file)
    const stats = await getJson<{ peerId?: string }>(`${node.url}/stats`)
    expect(stats.peerId).toBe(id.stdout.trim())
    const warning = await node.waitForLog((l) => String(l.msg).startsWith('The mesh is open (mesh.insecure: true)'))
    expect(warning.level).toBe(40)
  })
})

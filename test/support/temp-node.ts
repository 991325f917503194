// An in-process node on a temp data dir and a free port, for tests that need the real
// queue and HTTP without a child process.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig } from '../../src/config/index.js'
import { silentLogger } from '../../src/log.js'
import { BingeNode } from '../../src/node.js'

export interface TempNode {
  node: BingeNode
  dir: string
  url: string
  close(): Promise<void>
}

/** `yaml` is the node config without `node:` and `http.listen`, which are filled in. */
export async function startTempNode(yaml = '', overrides: { http?: string; queue?: string; id?: string } = {}): Promise<TempNode> {
  const dir = mkdtempSync(join(tmpdir(), 'binge-test-'))
  const text = [
    `node: { id: ${overrides.id ?? 'test-node'}, dataDir: ${JSON.stringify(join(dir, 'data'))} }`,
    `http: { listen: '127.0.0.1:0'${overrides.http ? `, ${overrides.http}` : ''} }`,
    overrides.queue ? `queue: { ${overrides.queue} }` : '',
    yaml.split('$DIR').join(dir),
  ].join('\n')
  const config = parseConfig(text, join(dir, 'binge.yaml'))
  const node = new BingeNode(config, { log: silentLogger, processMetrics: false })
  const address = await node.start()
  return {
    node,
    dir,
    url: `http://127.0.0.1:${address.port}`,
    async close() {
      await node.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export { waitFor } from './wait.js'

// /metrics passes Prometheus's own checker (docs/design.md §3, §8): a real node, run as
// `binge start` with its process metrics on, takes events that pass, are filtered, fail
// and are dead-lettered, so every metric family has samples; its /metrics text is then
// fed to `promtool check metrics` (Debian package `prometheus`), which must find
// nothing to complain about (it refused prom-client's gauges named ..._total).
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { cleanUpNodesAfterEach } from '../support/hooks.js'
import { makeTempDir, NodeProcess, waitFor, writeConfig } from '../support/node-process.js'

cleanUpNodesAfterEach()

function promtool(): string {
  const found = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' })
  const file = found.stdout.trim()
  if (found.status !== 0 || file === '') {
    throw new Error('promtool is missing: install the Debian package "prometheus" (apt-get install -y prometheus), which ships it')
  }
  return file
}

describe('GET /metrics', () => {
  it('passes promtool check metrics on a live node', { timeout: 120_000 }, async () => {
    const tool = promtool()
    const dir = makeTempDir('binge-promtool-')
    const config = writeConfig(dir, {
      node: { id: 'metrics-node', dataDir: path.join(dir, 'data') },
      http: { listen: '127.0.0.1:0' },
      pipelines: {
        readings: {
          steps: [{ filter: 'keep' }, { map: 'bad ? $error("bad reading") : $' }],
          outputs: [{ file: { path: path.join(dir, 'out.jsonl') } }],
          onFail: { then: 'deadletter' },
        },
      },
    })
    const node = await NodeProcess.start(config, { label: 'metrics-node' })
    const events = [{ keep: true }, { keep: false }, { keep: true, bad: true }]
    const res = await fetch(`${node.url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(events),
    })
    expect(res.status).toBe(202)
    await fetch(`${node.url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' })
    await waitFor(async () => (await node.stats()).counters.deadlettered === 1, { what: 'the bad reading to be dead-lettered' })

    const text = await (await fetch(`${node.url}/metrics`)).text()
    for (const family of [
      'binge_step_events_total',
      'binge_pipeline_failures_total',
      'binge_requests_rejected_total',
      'binge_process_nodejs_active_handles',
    ]) {
      expect(text).toContain(`# TYPE ${family} `)
    }
    const check = spawnSync(tool, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 })
    expect(`${check.stdout}${check.stderr}`.trim()).toBe('')
    expect(check.status).toBe(0)
  })
})

// `binge run` as a user runs it: the built CLI as a child process (run
// `npx tsc -p tsconfig.json` first), events from a file or stdin, what each output
// received on stdout as JSON lines, logs on stderr, and the exit code: 0 ok, 1 a
// pipeline failed, 2 bad input or config (with the place in the file).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../support/node-process.js'

const cli = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url))

interface Result {
  code: number | null
  stdout: string
  stderr: string
  /** stdout as parsed JSON lines. */
  lines: Array<Record<string, unknown>>
}

async function run(args: string[], options: { stdin?: string; cwd: string }): Promise<Result> {
  const r = await runCli(['run', ...args], options)
  return {
    ...r,
    lines: r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  }
}

let dir: string
let config: string

beforeAll(() => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npx tsc -p tsconfig.json\` first`)
  dir = mkdtempSync(join(tmpdir(), 'binge-run-'))
  config = join(dir, 'node.yaml')
  writeFileSync(
    config,
    `
node: { id: edge-1 }
log: { level: warn }
pipelines:
  hot-rooms:
    when: 'type = "temperature"'
    steps:
      - filter: 'celsius > 30'
      - map: '$merge([$, {"fahrenheit": celsius * 9 / 5 + 32}])'
    outputs:
      - file: { path: ./out/hot.jsonl }
      - stdout: { envelope: false }
  strict:
    when: 'type = "reading"'
    steps: [ { map: '$number(value) > 0 ? $ : value' } ]
    outputs: [ { http: { url: 'http://127.0.0.1:9/never' } } ]
    onFail: { then: drop }
  relay:
    when: 'type = "relay"'
    outputs: [ { forward: { pipeline: archive } } ]
`,
  )
})

afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

const hot = { type: 'temperature', room: 'a', celsius: 35 }

describe('binge run', () => {
  it('runs a good event from a file and prints what each output received; the file output writes for real', async () => {
    writeFileSync(join(dir, 'event.json'), JSON.stringify(hot))
    const r = await run(['--config', config, 'event.json'], { cwd: dir })
    expect(r.code, r.stderr).toBe(0)
    const record = {
      id: 'run-1',
      pipeline: 'hot-rooms',
      node: 'edge-1',
      origin: 'edge-1',
      receivedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      data: { ...hot, fahrenheit: 95 },
    }
    expect(r.lines).toEqual([
      { pipeline: 'hot-rooms', output: 'file', index: 0, record },
      { pipeline: 'hot-rooms', output: 'stdout', index: 1, record: { ...hot, fahrenheit: 95 } },
    ])
    const written = readFileSync(join(dir, 'out/hot.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as unknown)
    expect(written).toEqual([record])
  })

  it('prints nothing for a filtered event, and exits 0', async () => {
    const r = await run(['--config', config, '-'], { cwd: dir, stdin: JSON.stringify({ ...hot, celsius: 20 }) })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('')
  })

  it('with --dry-run only prints: NDJSON from stdin, and nothing is sent or written', async () => {
    const ndjson = `${[
      { ...hot, room: 'x' },
      { type: 'relay', n: 1 },
      { ...hot, room: 'y', celsius: 40 },
    ]
      .map((e) => JSON.stringify(e))
      .join('\n')}\n`
    const file = join(dir, 'out/hot.jsonl')
    const before = existsSync(file) ? readFileSync(file, 'utf8') : undefined
    const r = await run(['--config', config, '--dry-run'], { cwd: dir, stdin: ndjson })
    expect(r.code, r.stderr).toBe(0)
    // One batch: by pipeline as in the config, then output, then event.
    expect(
      r.lines.map((l) => [l.pipeline, l.output, (l.record as { id?: string; room?: string }).id ?? (l.record as { room: string }).room]),
    ).toEqual([
      ['hot-rooms', 'file', 'run-1'],
      ['hot-rooms', 'file', 'run-3'],
      ['hot-rooms', 'stdout', 'x'],
      ['hot-rooms', 'stdout', 'y'],
      ['relay', 'forward', 'run-2'],
    ])
    expect(existsSync(file) ? readFileSync(file, 'utf8') : undefined).toBe(before)
  })

  it('runs one pipeline with --pipeline, and refuses one the config lacks (exit 2)', async () => {
    const events = JSON.stringify([hot, { type: 'relay' }])
    const only = await run(['--config', config, '--pipeline', 'relay', '--dry-run'], { cwd: dir, stdin: events })
    expect(only.code, only.stderr).toBe(0)
    expect(only.lines.map((l) => l.pipeline)).toEqual(['relay'])
    const missing = await run(['--config', config, '--pipeline', 'nope'], { cwd: dir, stdin: events })
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain('has no pipeline "nope" (it has: hot-rooms, strict, relay)')
  })

  it('carries the state of stateful steps across batches, and closes windows at the end of the input', async () => {
    const stateful = join(dir, 'stateful.yaml')
    writeFileSync(
      stateful,
      `
log: { level: warn }
pipelines:
  once:
    steps: [ { dedupe: { key: room } } ]
    outputs: [ { stdout: { envelope: false } } ]
  counts:
    steps: [ { window: { key: room, size: 1h } } ]
    outputs: [ { stdout: { envelope: false } } ]
`,
    )
    // 70 events: three batches of up to 32, so dedupe must remember across batches.
    const events = Array.from({ length: 70 }, (_, i) => JSON.stringify({ room: i % 2 === 0 ? 'a' : 'b' })).join('\n')
    const r = await run(['--config', stateful, '--dry-run'], { cwd: dir, stdin: events })
    expect(r.code, r.stderr).toBe(0)
    expect(r.lines.filter((l) => l.pipeline === 'once').map((l) => l.record)).toEqual([{ room: 'a' }, { room: 'b' }])
    const windows = r.lines.filter((l) => l.pipeline === 'counts').map((l) => l.record as { key: string; count: number })
    expect(windows.map((w) => [w.key, w.count]).sort()).toEqual([
      ['a', 35],
      ['b', 35],
    ])
  })

  it('exits 1 when a pipeline fails an event, and still prints what the others received', async () => {
    const events = [{ type: 'reading', value: '-1' }, hot].map((e) => JSON.stringify(e)).join('\n')
    const r = await run(['--config', config], { cwd: dir, stdin: events })
    expect(r.code).toBe(1)
    expect(r.lines.map((l) => l.output)).toEqual(['file', 'stdout'])
    expect(r.stderr).toMatch(/not an object/)
    expect(r.stderr).toMatch(/"failed":1/)
  })

  it('exits 1 for a forward without --dry-run: binge run has no mesh', async () => {
    const r = await run(['--config', config], { cwd: dir, stdin: '{"type":"relay"}' })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('binge run has no mesh')
    expect(r.stdout).toBe('')
  })

  it.each([
    ['bad JSON', '{"type": "temperature", ', 'stdin:1: bad JSON'],
    ['a line of NDJSON that is not JSON', '{"a":1}\nnot json\n', 'stdin:2: bad JSON'],
    ['a JSON value that is not an object', '42', 'stdin: expected a JSON object, got number'],
    ['an array holding a non-object', '[{"a":1}, "b"]', 'stdin: item 1: expected a JSON object, got string'],
    ['empty input', '\n', 'stdin: no event: the input is empty'],
    // The checks POST /events makes, made here too (one parser for every door).
    [
      'a constructor key, as POST /events refuses it',
      '{"constructor":{"x":1}}',
      'stdin: the body has the key "constructor", which is not allowed',
    ],
    ['a __proto__ key on line 2 of NDJSON', '{"a":1}\n{"b":{"__proto__":{}}}\n', 'stdin:2: line 2.b has the key "__proto__"'],
    ['nesting deeper than 64', `${'{"a":'.repeat(65)}1${'}'.repeat(65)}`, 'nests deeper than 64 levels'],
    ['a number a double cannot hold', '[{"ok":1},{"t":1e400}]', 'stdin: item [1].t is a number too large for a double'],
  ])('exits 2 for %s, and runs nothing', async (_name, stdin, message) => {
    const r = await run(['--config', config], { cwd: dir, stdin })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(message)
    expect(r.stdout).toBe('')
  })

  it('exits 2 for a missing event file', async () => {
    const r = await run(['--config', config, 'missing.json'], { cwd: dir })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/cannot read missing\.json: .*ENOENT/)
  })

  it('exits 2 for a bad config, naming each problem with its place in the file', async () => {
    const bad = join(dir, 'bad.yaml')
    writeFileSync(
      bad,
      ['pipelines:', '  p:', '    steps:', "      - filter: 'celsius >'", '    outputs:', '      - http: { url: ftp://x }', ''].join('\n'),
    )
    const r = await run(['--config', bad], { cwd: dir, stdin: JSON.stringify(hot) })
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain(`${bad}: invalid config (2 problems)`)
    expect(r.stderr).toContain(`${bad}:4:17 pipelines.p.steps[0].filter: expected a JSONata expression`)
    expect(r.stderr).toContain(`${bad}:6:22 pipelines.p.outputs[0].http.url: expected an http(s) URL, got "ftp://x"`)
  })
})

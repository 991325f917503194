import { describe, expect, it } from 'vitest'
import { BingeError } from '../../src/errors.js'
import { formatProblems, loadConfig, parseConfig, stepSchemas, type ConfigProblem } from '../../src/config/index.js'

const fixture = (name: string) => new URL(`../fixtures/config/${name}`, import.meta.url).pathname

function refusal(fn: () => unknown): BingeError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(BingeError)
    expect((err as BingeError).code).toBe('BINGE_CONFIG_INVALID')
    return err as BingeError
  }
  throw new Error('expected the config to be refused')
}

const problemsIn = (text: string): ConfigProblem[] => refusal(() => parseConfig(text, 'node.yaml', {})).details?.problems as ConfigProblem[]

describe('every problem at once, each at its line', () => {
  it('lists all the problems of a file in file order', () => {
    const err = refusal(() => loadConfig(fixture('many-problems.yaml'), {}))
    const problems = err.details?.problems as ConfigProblem[]
    expect(problems.map((p) => [p.line, p.path])).toEqual([
      [5, 'http.listen'],
      [6, 'http.maxBodyBytes'],
      [9, 'queue.lowWaterMark'],
      [10, 'workers'],
      [16, 'pipelines.alerts.steps[1].filter'],
      [17, 'pipelines.alerts.steps[2]'],
      [20, 'pipelines.alerts.outputs[1].file.colour'],
      [22, 'pipelines.alerts.onFail.then'],
    ])
    expect(problems[4]).toEqual({
      path: 'pipelines.alerts.steps[1].filter',
      message: 'expected a JSONata expression: Unexpected end of expression (at character 7)',
      line: 16,
      column: 17,
    })
    expect(err.details?.file).toBe(fixture('many-problems.yaml'))
    // The message alone is enough for a person reading a terminal.
    expect(err.message).toContain('(8 problems)')
    const known = Object.keys(stepSchemas).sort().join(', ')
    expect(err.message).toContain(`${fixture('many-problems.yaml')}:17:9 pipelines.alerts.steps[2]: unknown step "fitler"; known: ${known}`)
  })

  it('formatProblems writes file:line:col path: message, one a line', () => {
    const text = formatProblems('mesh-configs/a.yaml', [
      { path: 'pipelines.alerts.steps[1].filter', message: 'expected a JSONata expression: x', line: 12, column: 7 },
      { path: '', message: 'cannot read the config file: no such file' },
    ])
    expect(text).toBe(
      'mesh-configs/a.yaml:12:7 pipelines.alerts.steps[1].filter: expected a JSONata expression: x\n' +
        'mesh-configs/a.yaml cannot read the config file: no such file',
    )
  })

  it('YAML syntax errors are reported with their places, all of them', () => {
    const problems = problemsIn('http:\n  listen: [a, b\nqueue: {mode: memory\n')
    expect(problems.length).toBeGreaterThanOrEqual(1)
    for (const p of problems) expect(p.line).toBeGreaterThanOrEqual(2)
    expect(problemsIn('a: 1\na: 2\n')).toEqual([expect.objectContaining({ line: 2, message: expect.stringMatching(/unique/i) })])
  })

  it('a missing file is a config problem too', () => {
    const err = refusal(() => loadConfig('/no/such/binge.yaml'))
    expect(err.details?.problems).toEqual([{ path: '', message: 'cannot read the config file: no such file' }])
    expect(err.message).toContain('/no/such/binge.yaml')
  })

  it('a document that is not a mapping is refused at 1:1', () => {
    expect(problemsIn('- node\n- http\n')).toEqual([
      { path: '', message: expect.stringContaining('expected a mapping'), line: 1, column: 1 },
    ])
  })
})

describe('unknown keys are refused at every depth', () => {
  it.each([
    ['nodes:\n  id: a\n', 'nodes', 1, 1],
    ['http:\n  lisen: 0.0.0.0:80\n', 'http.lisen', 2, 3],
    ['mesh:\n  peers: []\n  psk: k\n', 'mesh.peers', 2, 3],
    ['pipelines:\n  p:\n    step: []\n', 'pipelines.p.step', 3, 5],
    ['pipelines:\n  p:\n    onFail:\n      retry: { tries: 2 }\n', 'pipelines.p.onFail.retry.tries', 4, 16],
    ['pipelines:\n  p:\n    outputs:\n      - stdout: { pretty: true }\n', 'pipelines.p.outputs[0].stdout.pretty', 4, 19],
    ['pipelines:\n  p:\n    onFail: { then: { forward: { url: "http://x/", via: y } } }\n', 'pipelines.p.onFail.then.forward.via', 3, 52],
  ])('%j: %s at %d:%d', (text, path, line, column) => {
    const [problem, ...rest] = problemsIn(text)
    expect(rest).toEqual([])
    expect(problem).toMatchObject({ path, line, column })
    expect(problem?.message).toMatch(/^unknown key "\w+"; known: /)
  })

  it('names the known keys', () => {
    expect(problemsIn('http:\n  lisen: x\n')[0]?.message).toBe(
      'unknown key "lisen"; known: listen, maxBodyBytes, maxEventsPerRequest, authToken, requestTimeout',
    )
  })
})

describe('values', () => {
  it('bad JSONata is reported at its path with the parser message', () => {
    const problems = problemsIn(
      "pipelines:\n  alerts:\n    when: 'level = '\n    steps:\n      - filter: 'a > 1'\n      - map: '$merge([$, {\"x\": }])'\n",
    )
    expect(problems).toEqual([
      { path: 'pipelines.alerts.when', message: expect.stringMatching(/^expected a JSONata expression: .+/), line: 3, column: 11 },
      { path: 'pipelines.alerts.steps[1].map', message: expect.stringMatching(/^expected a JSONata expression: .+/), line: 6, column: 14 },
    ])
  })

  it('lowWaterMark above highWaterMark is placed at queue.lowWaterMark', () => {
    expect(problemsIn('queue:\n  highWaterMark: 100\n  lowWaterMark: 200\n')).toEqual([
      { path: 'queue.lowWaterMark', message: 'must be at or under highWaterMark (100), got 200', line: 3, column: 17 },
    ])
  })

  it('maxEvents under highWaterMark is placed at queue.maxEvents, even beside other problems', () => {
    const problems = problemsIn('queue:\n  mode: fast\n  maxEvents: 10\n')
    expect(problems.map((p) => p.path)).toEqual(['queue.mode', 'queue.maxEvents'])
  })

  it.each([
    ['http: { listen: "0.0.0.0:65536" }', 'http.listen'],
    ['http: { listen: "8080" }', 'http.listen'],
    ['http: { requestTimeout: soon }', 'http.requestTimeout'],
    ['workers: 0', 'workers'],
    ['workers: 1025', 'workers'],
    ['workers: 2.5', 'workers'],
    ['log: { level: loud }', 'log.level'],
    ['queue: { sync: sometimes }', 'queue.sync'],
    ['mesh: { bootstrap: node-b:7000, psk: k }', 'mesh.bootstrap'],
    ['pipelines: { "-bad": {} }', 'pipelines["-bad"]'],
    ['pipelines: { p: { outputs: [ { file: {} } ] } }', 'pipelines.p.outputs[0].file.path'],
    ['pipelines: { p: { steps: [ { filter: "a", map: "b" } ] } }', 'pipelines.p.steps[0]'],
    ['pipelines: { p: { onFail: { then: { forward: { url: "ftp://x" } } } } }', 'pipelines.p.onFail.then.forward.url'],
    ['pipelines: { p: { onFail: { retry: { backoff: 1s, maxBackoff: 10ms } } } }', 'pipelines.p.onFail.retry.maxBackoff'],
  ])('%j is refused at %s', (text, path) => {
    expect(problemsIn(text).map((p) => p.path)).toEqual([path])
  })

  it('host:port accepts names, IPv4, bracketed IPv6 and port 0', () => {
    for (const listen of ['localhost:80', '127.0.0.1:0', '[::]:65535', '[::1]:8080']) {
      expect(parseConfig(`http: { listen: "${listen}" }`, 'a.yaml', {}).http.listen).toBe(listen)
    }
  })
})

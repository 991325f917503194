import { describe, expect, it } from 'vitest'
import { BingeError } from '../../src/errors.js'
import { expandEnv, loadConfig, parseConfig, type ConfigProblem } from '../../src/config/index.js'

const fixture = (name: string) => new URL(`../fixtures/config/${name}`, import.meta.url).pathname

function problemsOf(fn: () => unknown): ConfigProblem[] {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(BingeError)
    expect((err as BingeError).code).toBe('BINGE_CONFIG_INVALID')
    return (err as BingeError).details?.problems as ConfigProblem[]
  }
  throw new Error('expected the config to be refused')
}

describe('expandEnv', () => {
  const env = { A: 'alpha', EMPTY: '' }

  it.each([
    ['${A}', 'alpha'],
    ['x-${A}-y', 'x-alpha-y'],
    ['${A}${A}', 'alphaalpha'],
    ['${B:-beta}', 'beta'],
    ['${A:-beta}', 'alpha'],
    ['${EMPTY:-fallback}', 'fallback'],
    ['${EMPTY}', ''],
    ['${B:-}', ''],
    ['${B:-http://h:9000/x}', 'http://h:9000/x'],
    ['$${A}', '${A}'],
    ['cost: $5', 'cost: $5'],
    ['no refs', 'no refs'],
  ])('%j becomes %j', (text, value) => {
    expect(expandEnv(text, env)).toEqual({ value, problems: [] })
  })

  it('reports an unset variable without a default', () => {
    const { problems } = expandEnv('${NOPE}', env)
    expect(problems).toEqual([expect.stringContaining('environment variable NOPE is not set')])
  })

  it('reports malformed references', () => {
    expect(expandEnv('${1BAD}', env).problems).toEqual([expect.stringContaining('bad variable reference')])
    expect(expandEnv('abc ${A', env).problems).toEqual([expect.stringContaining('unterminated')])
  })
})

describe('env substitution in a config file', () => {
  it('substitutes values, applies defaults and keeps escapes literal', () => {
    const config = loadConfig(fixture('env.yaml'), { BINGE_TOKEN: 'secret', PORT: '9090' })
    expect(config.node.id).toBe('node-default')
    expect(config.http.authToken).toBe('secret')
    expect(config.http.listen).toBe('127.0.0.1:9090')
    expect(config.workers).toBe(2)
    expect(config.pipelines.p?.when).toBe('tag = "${literal}"')
  })

  it('a substituted value stays a string where a string is expected', () => {
    const config = loadConfig(fixture('env.yaml'), { BINGE_TOKEN: '123456', WORKERS: '16' })
    expect(config.http.authToken).toBe('123456')
    expect(config.workers).toBe(16)
  })

  it('a value cannot change the structure of the document', () => {
    const text = 'node:\n  id: ${ID}\nhttp:\n  authToken: ${TOKEN}\n'
    const config = parseConfig(text, 'inline.yaml', { ID: 'a\nhttp: {listen: x}', TOKEN: "'quoted' # not a comment" })
    expect(config.node.id).toBe('a\nhttp: {listen: x}')
    expect(config.http.authToken).toBe("'quoted' # not a comment")
    expect(config.http.listen).toBe('0.0.0.0:8080')
  })

  it('an unset variable is a problem at its place, reported once', () => {
    const problems = problemsOf(() => loadConfig(fixture('env.yaml'), {}))
    expect(problems).toEqual([
      {
        path: 'http.authToken',
        message: expect.stringContaining('environment variable BINGE_TOKEN is not set'),
        line: 4,
        column: 14,
      },
    ])
  })

  it('keys are structure and are not substituted', () => {
    const problems = problemsOf(() => parseConfig('pipelines:\n  ${NAME}:\n', 'inline.yaml', { NAME: 'p' }))
    expect(problems).toEqual([{ path: 'pipelines["${NAME}"]', message: expect.stringContaining('pipeline name'), line: 2, column: 3 }])
  })
})

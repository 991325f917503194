// startAll: parts start in order; when one fails, it and those before it stop, last
// first, and the start's error is what the caller sees, even if a stop fails too.
import { describe, expect, it } from 'vitest'
import { startAll, stopAll, type Startable } from '../../src/util/startable.js'

function parts(log: string[], failStart?: string, failStop?: string): Startable[] {
  return ['http', 'queue', 'engine', 'mesh'].map((name) => ({
    start: async () => {
      log.push(`start ${name}`)
      if (name === failStart) throw new Error(`${name} could not start`)
    },
    stop: async () => {
      log.push(`stop ${name}`)
      if (name === failStop) throw new Error(`${name} could not stop`)
    },
  }))
}

describe('startAll', () => {
  it('starts every part in order', async () => {
    const log: string[] = []
    await startAll(parts(log))
    expect(log).toEqual(['start http', 'start queue', 'start engine', 'start mesh'])
  })

  it('undoes a failed start: the failing part and every part before it stop, last first (the engine too)', async () => {
    const log: string[] = []
    const stopErrors: unknown[] = []
    await expect(startAll(parts(log, 'mesh', 'queue'), (err) => stopErrors.push(err))).rejects.toThrow('mesh could not start')
    expect(log).toEqual(['start http', 'start queue', 'start engine', 'start mesh', 'stop mesh', 'stop engine', 'stop queue', 'stop http'])
    expect(stopErrors.map(String)).toEqual(['Error: queue could not stop'])
  })

  it('stopAll stops last first and goes on past a failing stop', async () => {
    const log: string[] = []
    const errors: unknown[] = []
    await stopAll(parts(log, undefined, 'engine'), (err) => errors.push(err))
    expect(log).toEqual(['stop mesh', 'stop engine', 'stop queue', 'stop http'])
    expect(errors).toHaveLength(1)
  })
})

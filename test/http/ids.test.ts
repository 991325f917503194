// Generated event ids: valid UUIDv7 strings, unique, led by their millisecond, and
// increasing within a process (dead letters, keyed by id, replay in arrival order).
import { describe, expect, it } from 'vitest'
import { uuidv7 } from '../../src/ids.js'

describe('uuidv7', () => {
  it('makes version-7, variant-1 UUIDs that only increase, even within one millisecond and past 4,096 of them', () => {
    const at = Date.now() + 60_000
    const ids = Array.from({ length: 20_000 }, () => uuidv7(at))
    for (const id of ids.slice(0, 2000)) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    for (let i = 1; i < ids.length; i++) if (!(ids[i - 1]! < ids[i]!)) throw new Error(`${ids[i - 1]} !< ${ids[i]}`)
    // The timestamp is the millisecond given, moved on only once a counter ran out.
    const ms = (id: string) => Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16)
    expect(ms(ids[0]!)).toBe(at)
    expect(ms(ids.at(-1)!) - at).toBeLessThan(20)
    // A clock that goes back does not make an id smaller.
    expect(uuidv7(at - 5_000) > ids.at(-1)!).toBe(true)
  })
})

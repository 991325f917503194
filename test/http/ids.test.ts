// Generated event ids: valid UUIDv7 strings, unique, led by their millisecond.
import { describe, expect, it } from 'vitest'
import { uuidv7 } from '../../src/ids.js'

describe('uuidv7', () => {
  it('makes unique version-7, variant-1 UUIDs whose first 48 bits are the time', () => {
    const ids = Array.from({ length: 50_000 }, () => uuidv7(0x0123456789ab))
    expect(new Set(ids).size).toBe(ids.length)
    for (const id of ids.slice(0, 2000)) expect(id).toMatch(/^01234567-89ab-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    const now = Date.now()
    const id = uuidv7()
    expect(Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBeGreaterThanOrEqual(now)
  })
})

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { durationSchema, parseDuration } from '../../src/util/duration.js'
import { parseSize, sizeSchema } from '../../src/util/size.js'

describe('parseDuration', () => {
  it.each([
    ['200ms', 200],
    ['5s', 5_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1.5s', 1_500],
    ['1.1s', 1_100],
    ['.5s', 500],
    ['1m30s', 90_000],
    ['1h30m15s', 5_415_000],
    ['0s', 0],
    ['250', 250],
    [' 5s ', 5_000],
    [750, 750],
    [0, 0],
  ])('%j is %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms)
  })

  it.each([['abc'], [''], ['5x'], ['5 s'], ['-5s'], ['1m30'], ['s'], ['5S'], ['1.2.3s'], [-1], [Number.NaN], [Infinity]])(
    '%j is refused',
    (input) => {
      expect(() => parseDuration(input)).toThrow(/expected a duration like 200ms, 5s or 10m, got/)
    },
  )

  it('any whole number of ms reads back the same, as a number or with a unit', () => {
    fc.assert(fc.property(fc.nat(), (n) => parseDuration(n) === n && parseDuration(`${n}ms`) === n))
  })

  it('durationSchema turns values into ms and words errors as people read them', () => {
    expect(durationSchema.parse('10m')).toBe(600_000)
    expect(durationSchema.parse(20)).toBe(20)
    const bad = durationSchema.safeParse('abc')
    expect(bad.success).toBe(false)
    expect(bad.error?.issues[0]?.message).toBe('expected a duration like 200ms, 5s or 10m, got "abc"')
    expect(durationSchema.safeParse(true).error?.issues[0]?.message).toBe('expected a duration like 200ms, 5s or 10m, got true')
  })
})

describe('parseSize', () => {
  it.each([
    ['512', 512],
    [512, 512],
    ['100b', 100],
    ['100B', 100],
    ['64KiB', 65_536],
    ['64kib', 65_536],
    ['1.5MiB', 1_572_864],
    ['1GiB', 1_073_741_824],
    ['2TiB', 2 * 2 ** 40],
    ['10MB', 10_000_000],
    ['1.1KB', 1_100],
    ['3GB', 3e9],
    ['64 KiB', 65_536],
    [0, 0],
  ])('%j is %d bytes', (input, bytes) => {
    expect(parseSize(input)).toBe(bytes)
  })

  it.each([['lots'], [''], ['10XB'], ['K'], ['-1KiB'], ['1..5MiB'], [1.5], [-1], ['99999999999TiB']])('%j is refused', (input) => {
    expect(() => parseSize(input)).toThrow(/size/)
  })

  it('KiB is 1024 bytes and KB is 1000, for any count', () => {
    fc.assert(fc.property(fc.nat(1_000_000), (n) => parseSize(`${n}KiB`) === n * 1024 && parseSize(`${n}KB`) === n * 1000))
  })

  it('sizeSchema turns values into bytes and words errors as people read them', () => {
    expect(sizeSchema.parse('1GiB')).toBe(2 ** 30)
    expect(sizeSchema.safeParse('lots').error?.issues[0]?.message).toBe('expected a size like 512, 64KiB, 10MB or 1GiB, got "lots"')
    expect(sizeSchema.safeParse([1]).error?.issues[0]?.message).toBe('expected a size like 512, 64KiB, 10MB or 1GiB, got a list')
  })
})

// Which events are in flight, held in memory beside the store. Finishing an event
// (ack, nack) first claims its key here, synchronously, all or none, so two callers
// can never both finish the same event and put it in two buckets; a failed write
// gives the claim back.

import { BingeError } from '../errors.js'

export class InflightClaims<V> {
  private readonly held = new Map<string, V>()

  get size(): number {
    return this.held.size
  }

  has(key: string): boolean {
    return this.held.has(key)
  }

  /** Every held key and its value. */
  entries(): ReadonlyMap<string, V> {
    return this.held
  }

  add(key: string, value: V): void {
    this.held.set(key, value)
  }

  /** Remove every key, or none (throwing) if one is not in flight or repeated. */
  claim(keys: string[]): V[] {
    const missing = keys.find((key) => !this.held.has(key))
    if (missing !== undefined || new Set(keys).size !== keys.length) {
      throw new BingeError('BINGE_INTERNAL', `event ${missing ?? '(repeated)'} is not in flight`)
    }
    return keys.map((key) => {
      const value = this.held.get(key)!
      this.held.delete(key)
      return value
    })
  }

  /** Give claims back after their write failed. */
  restore(keys: string[], values: V[]): void {
    keys.forEach((key, i) => {
      this.held.set(key, values[i]!)
    })
  }

  clear(): void {
    this.held.clear()
  }
}

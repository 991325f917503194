// The last N values of a measurement (a ring), for percentiles of what happened lately:
// p95 of the last 256 step runs says more about a live node than a histogram since
// start, and costs one array write per sample.

export class RecentSamples {
  private readonly values: Float64Array
  private size = 0
  private next = 0

  constructor(capacity = 256) {
    this.values = new Float64Array(Math.max(1, capacity))
  }

  add(value: number): void {
    this.values[this.next] = value
    this.next = (this.next + 1) % this.values.length
    if (this.size < this.values.length) this.size++
  }

  /** The q-quantile (0-1) of the kept values, nearest rank; undefined when none were added. */
  quantile(q: number): number | undefined {
    if (this.size === 0) return undefined
    const sorted = this.values.slice(0, this.size).sort()
    return sorted[Math.min(this.size - 1, Math.max(0, Math.ceil(q * this.size) - 1))]
  }
}

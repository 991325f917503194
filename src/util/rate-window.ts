// Events per second over a recent span (up to a minute), counted in one-second slots:
// add() is O(1) and allocates nothing, so it can sit on the per-batch paths (ingest,
// handoff, pipeline results). Only whole past seconds are counted, so a rate lags by
// under a second and never jumps on a half-filled current slot.

const slots = 61

export class RateWindow {
  private readonly counts = new Float64Array(slots)
  /** The epoch second each slot holds; a slot from an older second is stale. */
  private readonly seconds = new Float64Array(slots).fill(-1)
  total = 0

  constructor(private readonly now: () => number = Date.now) {}

  add(count: number): void {
    const second = Math.floor(this.now() / 1000)
    const slot = second % slots
    if (this.seconds[slot] !== second) {
      this.seconds[slot] = second
      this.counts[slot] = 0
    }
    this.counts[slot]! += count
    this.total += count
  }

  /** Mean events per second over the last `spanSeconds` whole seconds (1-60). */
  rate(spanSeconds = 60): number {
    const span = Math.max(1, Math.min(slots - 1, Math.floor(spanSeconds)))
    const current = Math.floor(this.now() / 1000)
    let sum = 0
    for (let slot = 0; slot < slots; slot++) {
      const age = current - this.seconds[slot]!
      if (age >= 1 && age <= span) sum += this.counts[slot]!
    }
    return sum / span
  }
}

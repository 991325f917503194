// How the dashboard writes numbers, rates, durations and load bands.

export function count(n: number | undefined): string {
  return n === undefined || !Number.isFinite(n) ? '–' : Math.round(n).toLocaleString('en-US')
}

/** Events per second: one decimal under 10. */
export function rate(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '–'
  return n < 10 ? `${(Math.round(n * 10) / 10).toFixed(n === 0 ? 0 : 1)}/s` : `${count(n)}/s`
}

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds > 86_400 * 2) return 'over 2 days'
  if (seconds < 1) return 'under 1 s'
  if (seconds < 90) return `${Math.round(seconds)} s`
  if (seconds < 5_400) return `${Math.floor(seconds / 60)} m ${Math.round(seconds % 60)} s`
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} m`
}

export function ago(ms: number): string {
  if (ms < 1_000) return 'just now'
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s ago`
  return `${duration(ms / 1000)} ago`
}

export function latency(ms: number | undefined): string {
  if (ms === undefined) return '–'
  if (ms < 1) return `${Math.round(ms * 1000)} µs`
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`
  return `${(ms / 1000).toFixed(2)} s`
}

export function clock(at: number | string): string {
  const d = new Date(at)
  const pad = (n: number, w = 2) => String(n).padStart(w, '0')
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
}

export type Band = 'green' | 'yellow' | 'red'

/** NiFi's queue colours: under 60% green, to 85% yellow, above red. */
export function band(fraction: number): Band {
  return fraction < 0.6 ? 'green' : fraction <= 0.85 ? 'yellow' : 'red'
}

export function percent(fraction: number): string {
  if (!Number.isFinite(fraction)) return '–'
  const p = fraction * 100
  return p > 0 && p < 1 ? '<1%' : `${Math.round(p)}%`
}

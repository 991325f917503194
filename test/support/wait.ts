// The one way tests wait: poll a condition until it holds or a generous deadline
// passes (never a fixed sleep). A probe "holds" when it returns anything but
// undefined, null or false; a probe that throws is retried, and its last error is
// named in the timeout.

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

export interface WaitOptions {
  timeoutMs?: number
  intervalMs?: number
  /** Named in the timeout error. */
  what?: string
}

/** Poll `probe` until it returns a value (not undefined, null or false); throw at the deadline. */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  options: WaitOptions = {},
): Promise<T> {
  const { timeoutMs = 30_000, intervalMs = 25, what = 'a condition' } = options
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined && value !== null && value !== false) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) {
      const why = lastError === undefined ? '' : ` (last error: ${String(lastError)})`
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`)
    }
    await delay(intervalMs)
  }
}

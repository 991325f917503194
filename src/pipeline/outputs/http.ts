// http: POSTs the records as one JSON array and resolves on a 2xx. A 4xx other than
// 408 and 429 means the endpoint will never take this payload: a permanent failure,
// not retried. 5xx, 408, 429, timeouts and connection errors are retried by the
// pipeline's onFail.retry.
import { BingeError } from '../../errors.js'
import type { Output } from '../types.js'

export interface HttpOutputOptions {
  url: string
  timeoutMs: number
  headers: Record<string, string>
}

export class OutputFailure extends BingeError {
  constructor(message: string, readonly permanent: boolean, cause?: unknown) {
    super('BINGE_OUTPUT_FAILED', message, { cause })
    this.name = 'OutputFailure'
  }
}

export function createHttpOutput(options: HttpOutputOptions): Output {
  return {
    kind: 'http',
    async write(records, { signal } = {}) {
      const timeout = AbortSignal.timeout(options.timeoutMs)
      let res: Response
      try {
        res = await fetch(options.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...options.headers },
          body: JSON.stringify(records),
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        })
      } catch (err) {
        const why = timeout.aborted ? `timed out after ${options.timeoutMs} ms` : (err as Error).message
        throw new OutputFailure(`POST ${options.url} failed: ${why}`, false, err)
      }
      const text = await res.text().catch(() => '')
      if (res.ok) return
      const permanent = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429
      throw new OutputFailure(`POST ${options.url} answered ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`, permanent)
    },
  }
}

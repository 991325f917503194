// http: POSTs records as JSON arrays and resolves a write once every POST holding its
// records answered 2xx. Records of concurrent writes (several workers) are batched
// into POSTs of at most `batch.count` (batcher.ts): sent when that many wait, at once
// when no POST is in flight, else when the POSTs in flight answer or `batch.period`
// after the first waiting one. A 4xx other than 408 and 429 means the endpoint will
// never take this payload: a permanent failure, not retried. 5xx, 408, 429, timeouts
// and connection errors are transient: the pipeline retries them per onFail.retry,
// with exponential backoff and jitter.
import { z } from 'zod'
import { bool, httpUrl, int, optionalSection, strict } from '../../schema/fields.js'
import { durationSchema } from '../../util/duration.js'
import type { OutputEntry } from '../registry-types.js'
import type { Output } from '../types.js'
import { Batcher } from './batcher.js'
import { OutputFailure } from './failure.js'

export { OutputFailure } from './failure.js'

export interface HttpOutputOptions {
  url: string
  timeoutMs: number
  headers?: Record<string, string>
  /** Most records in one POST (default 100). */
  batchCount?: number
  /** Longest a record waits, while POSTs are in flight, for others to share its POST (default 200 ms). */
  batchPeriodMs?: number
}

export const httpDefaults = { timeoutMs: 5_000, batchCount: 100, batchPeriodMs: 200 }

/** Why a fetch failed, in a few words: undici hides the socket error in `cause`. */
function reason(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } }
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err)
}

/** One POST; throws an OutputFailure saying whether a retry can help. `abandoned` aborts it: nobody waits for it. */
export async function postJson(options: HttpOutputOptions, records: unknown[], abandoned?: AbortSignal): Promise<void> {
  const { url, timeoutMs } = options
  const timeout = AbortSignal.timeout(timeoutMs)
  let res: Response
  let text: string
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...options.headers },
      body: JSON.stringify(records),
      signal: abandoned ? AbortSignal.any([timeout, abandoned]) : timeout,
    })
    text = await res.text()
  } catch (err) {
    const why = timeout.aborted ? `timed out after ${timeoutMs} ms` : abandoned?.aborted ? 'abandoned by its writers' : reason(err)
    throw new OutputFailure(`POST ${url} failed: ${why}`, false, err)
  }
  if (res.ok) return
  const permanent = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429
  throw new OutputFailure(`POST ${url} answered ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`, permanent)
}

export function createHttpOutput(options: HttpOutputOptions): Output {
  const batcher = new Batcher<unknown>({
    count: options.batchCount ?? httpDefaults.batchCount,
    periodMs: options.batchPeriodMs ?? httpDefaults.batchPeriodMs,
    send: (records, abandoned) => postJson(options, records, abandoned),
  })
  return {
    kind: 'http',
    write: (records, { signal } = {}) => batcher.submit(records, signal),
    stop: () => batcher.flush(),
  }
}

const schema = strict({
  url: httpUrl().describe('where to POST; http or https'),
  timeout: durationSchema.default(httpDefaults.timeoutMs).describe('longest one POST may take; past it, it is retried'),
  headers: z.record(z.string(), z.string()).default({}).describe('extra request headers (`Authorization`, ...)'),
  envelope: bool().default(true).describe('send envelopes; false: the event data alone'),
  batch: optionalSection(
    strict({
      count: int(1, 10_000).default(httpDefaults.batchCount).describe('most events in one POST; a POST goes out as soon as this many wait'),
      period: durationSchema
        .default(httpDefaults.batchPeriodMs)
        .describe('while POSTs are in flight, longest an event waits for others to share its POST; with none in flight it goes at once'),
    }),
  ).describe('how events of concurrent writes are gathered into POSTs'),
})

export type HttpOutputConfig = z.output<typeof schema>

export const httpOutput: OutputEntry<HttpOutputConfig> = {
  name: 'http',
  summary:
    'POSTs events as JSON arrays, concurrent writes batched by count and time; 5xx, 408, 429 and timeouts are retried, other 4xx fail at once.',
  schema,
  create: (config) =>
    createHttpOutput({
      url: config.url,
      timeoutMs: config.timeout,
      headers: config.headers,
      batchCount: config.batch?.count,
      batchPeriodMs: config.batch?.period,
    }),
}

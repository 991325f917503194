// One error type for the whole node. Every failure a caller may act on carries a
// stable `code` (listed in the README) and, where it maps to HTTP, a status, so the
// http layer renders any BingeError without knowing where it came from.

export type BingeErrorCode =
  | 'BINGE_CONFIG_INVALID'
  | 'BINGE_BAD_REQUEST'
  | 'BINGE_UNAUTHORIZED'
  | 'BINGE_NOT_FOUND'
  | 'BINGE_PAYLOAD_TOO_LARGE'
  | 'BINGE_UNSUPPORTED_MEDIA_TYPE'
  | 'BINGE_QUEUE_FULL'
  | 'BINGE_IDEMPOTENCY_CONFLICT'
  | 'BINGE_NOT_READY'
  | 'BINGE_OUTCOME_UNKNOWN'
  | 'BINGE_QUEUE_CLOSED'
  | 'BINGE_EXPRESSION_FAILED'
  | 'BINGE_EXPRESSION_TIMEOUT'
  | 'BINGE_OUTPUT_FAILED'
  | 'BINGE_MESH_REQUEST_FAILED'
  | 'BINGE_FRAME_TOO_LARGE'
  | 'BINGE_LATE_EVENT'
  | 'BINGE_STATS_UNAVAILABLE'
  | 'BINGE_INTERNAL'

const statusOf: Record<BingeErrorCode, number> = {
  BINGE_CONFIG_INVALID: 500,
  BINGE_BAD_REQUEST: 400,
  BINGE_UNAUTHORIZED: 401,
  BINGE_NOT_FOUND: 404,
  BINGE_PAYLOAD_TOO_LARGE: 413,
  BINGE_UNSUPPORTED_MEDIA_TYPE: 415,
  BINGE_QUEUE_FULL: 429,
  // As the IETF Idempotency-Key draft says for a key reused with another payload.
  BINGE_IDEMPOTENCY_CONFLICT: 422,
  BINGE_NOT_READY: 503,
  // Not stored here, but a peer may hold the events: unlike every other refusal, a
  // retry without the same Idempotency-Key may store them twice.
  BINGE_OUTCOME_UNKNOWN: 503,
  BINGE_QUEUE_CLOSED: 503,
  BINGE_EXPRESSION_FAILED: 500,
  BINGE_EXPRESSION_TIMEOUT: 500,
  BINGE_OUTPUT_FAILED: 502,
  BINGE_MESH_REQUEST_FAILED: 502,
  BINGE_FRAME_TOO_LARGE: 413,
  BINGE_LATE_EVENT: 500,
  BINGE_STATS_UNAVAILABLE: 502,
  BINGE_INTERNAL: 500,
}

export interface BingeErrorOptions {
  cause?: unknown
  /** Seconds a client should wait before retrying (429, 503). */
  retryAfter?: number
  /** Extra fields rendered into the JSON error body. */
  details?: Record<string, unknown>
}

export class BingeError extends Error {
  readonly code: BingeErrorCode
  readonly status: number
  readonly retryAfter?: number
  readonly details?: Record<string, unknown>

  constructor(code: BingeErrorCode, message: string, options: BingeErrorOptions = {}) {
    super(message, { cause: options.cause })
    this.name = 'BingeError'
    this.code = code
    this.status = statusOf[code]
    this.retryAfter = options.retryAfter
    this.details = options.details
  }
}

/** Turn anything thrown (including non-Error rejections) into an Error. */
export function asError(err: unknown): Error {
  if (err instanceof Error) return err
  return new Error(typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err)))
}

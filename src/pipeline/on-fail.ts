// What happens to an event that failed in a pipeline after its retries. Nothing is
// dropped silently: drop is counted, alert logs at ERROR (and may call a webhook), and
// a forward that cannot be delivered falls back to the dead-letter bucket.
import type { Logger } from 'pino'
import { asError } from '../errors.js'
import type { FailureAction } from '../metrics.js'
import type { OnFailConfig } from './on-fail-schema.js'
import { entryOf } from '../schema/one-key.js'
import type { EventRecord } from '../queue/types.js'

export type FailurePolicy = OnFailConfig

export interface Failure {
  pipeline: string
  nodeId: string
  event: EventRecord
  error: Error
  attempts: number
}

const notifyTimeoutMs = 5_000

function report(f: Failure): string {
  return JSON.stringify({
    pipeline: f.pipeline,
    node: f.nodeId,
    error: f.error.message,
    attempts: f.attempts,
    event: { id: f.event.id, origin: f.event.origin, receivedAt: new Date(f.event.receivedAt).toISOString(), data: f.event.data },
  })
}

async function post(url: string, body: string): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    signal: AbortSignal.timeout(notifyTimeoutMs),
  })
  await res.body?.cancel()
  if (!res.ok) throw new Error(`${url} answered ${res.status}`)
}

export async function deliverFailure(policy: FailurePolicy, f: Failure, log: Logger): Promise<FailureAction> {
  const then = policy.then
  const fields = { pipeline: f.pipeline, id: f.event.id, attempts: f.attempts, err: f.error.message }
  if (then === 'deadletter') {
    log.warn(fields, 'An event failed and was dead-lettered.')
    return 'deadletter'
  }
  if (then === 'drop') {
    log.warn(fields, 'An event failed and was dropped, as its pipeline asks.')
    return 'drop'
  }
  const [kind, options] = then === 'alert' ? ['alert', {}] : entryOf(then)
  if (kind === 'alert') {
    log.error(fields, 'An event failed and was dropped with an alert.')
    const webhook = (options as { webhook?: string } | null)?.webhook
    if (webhook)
      await post(webhook, report(f)).catch((err) =>
        log.error({ ...fields, webhook, err: asError(err).message }, 'The alert webhook could not be reached.'),
      )
    return 'alert'
  }
  const url = (options as { url: string }).url
  try {
    await post(url, report(f))
    log.warn({ ...fields, url }, 'An event failed and was forwarded.')
    return 'forward'
  } catch (err) {
    log.error({ ...fields, url, forwardErr: asError(err).message }, 'A failed event could not be forwarded, so it was dead-lettered.')
    return 'deadletter'
  }
}

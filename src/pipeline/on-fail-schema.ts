// The schema of a pipeline's `onFail`: retries, then what happens to an event that still
// fails. It lives beside the code that carries it out (on-fail.ts); the config schema
// composes it, so pipeline/ never imports config/.
import { z } from 'zod'
import { httpUrl, int, ordered, section, strict } from '../schema/fields.js'
import { oneKeyOf, type OneKey } from '../schema/one-key.js'
import { durationSchema } from '../util/duration.js'

export const retrySection = strict({
  attempts: int(0).default(3),
  backoff: durationSchema.default(200),
  maxBackoff: durationSchema.default(30_000),
}).check(ordered('backoff', 'maxBackoff', 'high', 'ms'))

/** What `onFail.then` may say, besides the bare words deadletter, drop and alert. */
export const failActionSchemas: Record<string, z.ZodType> = {
  forward: strict({ url: httpUrl() }),
  alert: section(strict({ webhook: httpUrl().optional() })),
}

const bareActions = ['deadletter', 'drop', 'alert'] as const
export type BareFailAction = (typeof bareActions)[number]
const failAction = oneKeyOf('failure action', failActionSchemas)

// A bare word or a one-key object; kept as written so the engine sees the same shape.
const thenSchema = z.unknown().transform((input, ctx): BareFailAction | OneKey => {
  if (typeof input !== 'string') {
    const parsed = failAction.safeParse(input)
    if (parsed.success) return parsed.data
    ctx.issues.push(...parsed.error.issues.map((issue) => ({ ...issue, input: undefined })))
    return z.NEVER
  }
  if ((bareActions as readonly string[]).includes(input)) return input as BareFailAction
  ctx.addIssue({
    code: 'custom',
    message: `expected deadletter, drop, alert, forward: { url } or alert: { webhook }, got ${JSON.stringify(input)}`,
  })
  return z.NEVER
})

export const onFailSection = strict({
  retry: retrySection.optional(),
  then: thenSchema.default('deadletter'),
})

export type OnFailConfig = z.output<typeof onFailSection>
export type RetryConfig = z.output<typeof retrySection>
export type FailAction = BareFailAction | OneKey

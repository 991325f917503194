// What a node gossips about itself every gossipInterval, and the check every received
// announcement passes before it is believed: schema, size, and that the signed sender
// is the peer it claims to be. Anything else is rejected, so gossipsub's peer scoring
// penalises whoever relayed it.
import { z } from 'zod'

export const loadTopic = 'binge/load/1'
export const maxAnnouncementBytes = 16 * 1024

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

export const announcementSchema = z.strictObject({
  v: z.literal(1),
  node: z.string().min(1).max(200),
  peerId: z.string().min(1).max(200),
  /** host:port the node's HTTP API listens on; an empty host means "the address you reach me at". */
  http: z
    .string()
    .max(300)
    .regex(/:\d{1,5}$/, 'http must end in :port'),
  addrs: z.array(z.string().max(300)).max(32),
  depth: count,
  inflight: count,
  highWaterMark: count,
  lowWaterMark: count,
  maxEvents: count,
  accepting: z.boolean(),
  /** Events per second this node finished lately. */
  drainRate: z.number().min(0).max(1e9),
  pipelines: z.array(z.string().min(1).max(200)).max(1000),
  sentAt: z.number().int().min(0),
})

export type Announcement = z.output<typeof announcementSchema>

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodeAnnouncement(a: Announcement): Uint8Array {
  return encoder.encode(JSON.stringify(a))
}

/** The announcement if `data` is a valid one sent by `sender`, else the reason it is not. */
export function decodeAnnouncement(data: Uint8Array, sender: string): Announcement | string {
  if (data.byteLength > maxAnnouncementBytes) return `announcement of ${data.byteLength} bytes is over ${maxAnnouncementBytes}`
  let parsed: unknown
  try {
    parsed = JSON.parse(decoder.decode(data))
  } catch {
    return 'announcement is not JSON'
  }
  const result = announcementSchema.safeParse(parsed)
  if (!result.success) return `announcement does not match the schema: ${result.error.issues[0]?.message ?? 'invalid'}`
  if (result.data.peerId !== sender) return `announcement claims peer ${result.data.peerId} but was signed by ${sender}`
  return result.data
}

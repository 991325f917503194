// The opaque `QueuedEvent.key` both backends hand out: a sequence number written
// fixed-width in decimal, so comparing two keys as strings compares their arrival order.
// An event keeps its key in every bucket it passes through, so a nack or a returned
// handoff puts it back in its old place; a number is never handed out twice.

/** Width of a sequence number: Number.MAX_SAFE_INTEGER has 16 digits. */
export const SEQ_WIDTH = 16

export function seqString(seq: number): string {
  return String(seq).padStart(SEQ_WIDTH, '0')
}

export const isQueueKey = (key: string): boolean => key.length === SEQ_WIDTH && /^[0-9]+$/.test(key)

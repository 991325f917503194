// Text of a whole payload or frame, made or read a piece at a time. V8 puts a string of
// over 128 KiB in its large-object space, each page of it a fresh page fault: on the
// 2-core machine (a Firecracker VM, about 11 µs a fault) decoding 600 KB into one string
// cost 2.8-3.4 µs per KB, against 0.09 in pieces of 64 KB or less. So no hot path makes
// one string of a request body or a handoff frame (a 512-event frame is about 560 KB).

/**
 * The most bytes (or UTF-16 code units) made or read as one piece. A piece of UTF-8
 * decodes to at most this many code units, so its string stays under the limit even
 * when it is two bytes a unit.
 */
export const pieceBytes = 32 * 1024

/** Append the UTF-8 of `texts`, joined by `separator`, to `out`, a piece at a time. */
export function pushUtf8Pieces(out: Buffer[], texts: readonly string[], separator: string): void {
  let piece = ''
  for (let i = 0; i < texts.length; i++) {
    if (i > 0) piece += separator
    const text = texts[i]!
    if (text.length >= pieceBytes) {
      // A text this big is one string already: no piece would be smaller.
      if (piece !== '') out.push(Buffer.from(piece))
      out.push(Buffer.from(text))
      piece = ''
      continue
    }
    piece += text
    if (piece.length >= pieceBytes) {
      out.push(Buffer.from(piece))
      piece = ''
    }
  }
  if (piece !== '') out.push(Buffer.from(piece))
}

/** `bytes` decoded as UTF-8, as pieces whose concatenation is what one decode gives. */
export function decodePieces(bytes: Uint8Array): string[] {
  const stream = new TextDecoder()
  const pieces: string[] = []
  for (let at = 0; at < bytes.length; at += pieceBytes) {
    const piece = stream.decode(bytes.subarray(at, at + pieceBytes), { stream: true })
    if (piece !== '') pieces.push(piece)
  }
  const rest = stream.decode()
  if (rest !== '') pieces.push(rest)
  return pieces
}

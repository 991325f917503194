// How many bytes of inbound frames a node holds at once, per connection and in all.
// A stream's reader buffers what arrives (yamux grants window on receipt, so nothing
// pushes back), so a frame's declared length is reserved here as soon as its prefix is
// read, before its body, and a frame that does not fit is refused at once (the stream
// is reset, the sender resends later); the reservation ends when its answer is sent.

/** Bytes of frames being read and handled on one connection at once (4 full frames). */
export const connectionFrameBytes = 64 * 1024 * 1024
/** Bytes of frames being read and handled on all connections at once. */
export const nodeFrameBytes = 256 * 1024 * 1024

export class FrameBudget {
  private total = 0
  private readonly byConnection = new Map<string, number>()

  constructor(
    private readonly nodeBytes = nodeFrameBytes,
    private readonly connectionBytes = connectionFrameBytes,
  ) {}

  /** Reserve `bytes` for a frame on `connection`; returns why not when it does not fit. */
  reserve(connection: string, bytes: number): string | undefined {
    const used = this.byConnection.get(connection) ?? 0
    if (used + bytes > this.connectionBytes) {
      return `frames being read on this connection would hold ${used + bytes} bytes, over the ${this.connectionBytes} allowed`
    }
    if (this.total + bytes > this.nodeBytes) {
      return `frames being read on this node would hold ${this.total + bytes} bytes, over the ${this.nodeBytes} allowed`
    }
    this.byConnection.set(connection, used + bytes)
    this.total += bytes
    return undefined
  }

  release(connection: string, bytes: number): void {
    if (bytes === 0) return
    const left = (this.byConnection.get(connection) ?? 0) - bytes
    if (left > 0) this.byConnection.set(connection, left)
    else this.byConnection.delete(connection)
    this.total -= bytes
  }

  /** Bytes reserved now (for tests and stats). */
  used(): number {
    return this.total
  }
}

// The frame layer on real libp2p over loopback (two hosts in this process): a frame of
// exactly the limit goes through, one byte more is refused before anything is sent,
// and a receiver resets a stream whose frame is over the limit or over its byte budget,
// logging why (WARN, with the peer and the reason).
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { FrameBudget } from '../../src/mesh/frame-budget.js'
import { FrameTooLargeError, maxFrameBytes, request, serve } from '../../src/mesh/frames.js'
import { createPeerHost, type PeerHost } from '../../src/mesh/peer-host.js'
import { waitFor } from '../support/node-process.js'

const hosts: PeerHost[] = []
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.stop()))
})

const psk = 'frames-wire-test'
const protocol = '/binge-test/echo/1.0.0'
const resetMsg = 'A mesh stream was reset before its answer was sent.'

async function host(): Promise<PeerHost> {
  const h = await createPeerHost({ privateKey: await generateKeyPair('Ed25519'), listen: '/ip4/127.0.0.1/tcp/0', psk, allowPeers: [] })
  hosts.push(h)
  await h.start()
  return h
}

/** A receiver that answers with the length of what it read, once `gate` opens; and its WARN lines. */
async function receiver(budget: FrameBudget, gate: Promise<void> = Promise.resolve()) {
  const warnings: Array<Record<string, unknown>> = []
  const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>) })
  const server = await host()
  await serve(
    server,
    protocol,
    20_000,
    async (body) => {
      await gate
      return { chars: typeof body === 'string' ? body.length : -1 }
    },
    { budget, log },
  )
  const client = await host()
  await client.dial(server.getMultiaddrs()[0]!)
  return { server, client, warnings }
}

describe('mesh frames on the wire', () => {
  it('carries a frame of exactly the limit; refuses one byte more before sending', { timeout: 60_000 }, async () => {
    const { server, client, warnings } = await receiver(new FrameBudget())
    // A JSON string: its quotes and maxFrameBytes - 2 characters make maxFrameBytes bytes.
    const answer = await request(client, server.peerId, protocol, 'x'.repeat(maxFrameBytes - 2), 20_000)
    expect(answer).toEqual({ chars: maxFrameBytes - 2 })
    await expect(request(client, server.peerId, protocol, 'x'.repeat(maxFrameBytes - 1), 20_000)).rejects.toBeInstanceOf(FrameTooLargeError)
    expect(warnings).toEqual([])
  })

  it('resets a stream whose frame says it is over the limit, and logs the peer and why', { timeout: 60_000 }, async () => {
    const { server, client, warnings } = await receiver(new FrameBudget())
    const stream = await client.dialProtocol(server.peerId, protocol)
    // A varint prefix of 20 MiB, and a little of the body.
    const length = 20 * 1024 * 1024
    const prefix = [(length & 0x7f) | 0x80, ((length >> 7) & 0x7f) | 0x80, ((length >> 14) & 0x7f) | 0x80, length >> 21]
    stream.send(Uint8Array.from([...prefix, 0x22, 0x78]))
    const warned = await waitFor(() => warnings.find((w) => w.msg === resetMsg), { what: 'the receiver to log the reset' })
    expect(warned).toMatchObject({ level: 40, peer: client.peerId.toString(), protocol })
    expect(String(warned.reason)).toContain(`over the ${maxFrameBytes} allowed`)
    await waitFor(() => stream.status !== 'open', { what: 'the stream to be reset' })
  })

  it("resets a frame over the connection's byte budget while another is being handled, and logs why", { timeout: 60_000 }, async () => {
    let open!: () => void
    const gate = new Promise<void>((resolve) => (open = resolve))
    const { server, client, warnings } = await receiver(new FrameBudget(100 * 1024 * 1024, 10 * 1024 * 1024), gate)
    const six = 'y'.repeat(6 * 1024 * 1024)
    const first = request(client, server.peerId, protocol, six, 20_000)
    const second = request(client, server.peerId, protocol, six, 20_000)
    const settled = Promise.allSettled([first, second])
    const warned = await waitFor(() => warnings.find((w) => w.msg === resetMsg), { what: 'the receiver to refuse the second frame' })
    expect(String(warned.reason)).toContain('on this connection')
    expect(warned.peer).toBe(client.peerId.toString())
    open()
    const outcomes = await settled
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1)
    expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(1)
    // The budget is free again: the next frame goes through.
    await expect(request(client, server.peerId, protocol, six, 20_000)).resolves.toEqual({ chars: six.length })
  })
})

// The mesh's transport alone: two libp2p hosts in this process over loopback, with a psk,
// carry frames of BENCH_FRAME_KB (default 512: a handoff batch of 1 KB events) one after
// another, each answered by a small frame (frames.ts, as a handoff is). Two stacks,
// alternating in BENCH_ROUNDS rounds (default 3) of BENCH_FRAMES frames (default 200):
//   binge:  the mesh's own host (peer-host.ts: private-network.ts, noise-crypto.ts); two
//           of them bind the psk into Noise (one cipher, design.md "The mesh's key")
//   libp2p: the same with libp2p's own parts (@libp2p/pnet, @libp2p/noise's default cipher)
// Both ends run here, so the CPU per MB is a sender's and a receiver's together.
// Prints labelled lines, then one JSON line.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { noise } from '@libp2p/noise'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import { FrameBudget } from '../src/mesh/frame-budget.js'
import { requestFrame, serve } from '../src/mesh/frames.js'
import { createPeerHost, type PeerHost } from '../src/mesh/peer-host.js'
import { swarmKey } from '../src/mesh/private-network.js'
import { envInt, fmt, line } from './support.js'

const FRAME_KB = envInt('BENCH_FRAME_KB', 512)
const FRAMES = envInt('BENCH_FRAMES', 200)
const ROUNDS = envInt('BENCH_ROUNDS', 3)
const psk = randomBytes(32).toString('hex')
const listen = '/ip4/127.0.0.1/tcp/0'
const protocol = '/binge-bench/transport/1.0.0'

type Stack = 'binge' | 'libp2p'

async function host(stack: Stack): Promise<PeerHost> {
  const privateKey = await generateKeyPair('Ed25519')
  if (stack === 'binge') return createPeerHost({ privateKey, listen, psk, allowPeers: [] })
  const h = await createLibp2p({
    privateKey,
    addresses: { listen: [listen] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: preSharedKey({ psk: swarmKey(psk) }),
  })
  return h as unknown as PeerHost
}

/** MB/s and CPU ms per MB of FRAMES frames from one fresh host to another. */
async function run(stack: Stack): Promise<{ mbPerSecond: number; cpuMsPerMb: number }> {
  const [a, b] = [await host(stack), await host(stack)]
  try {
    await Promise.all([a.start(), b.start()])
    await serve(b, protocol, 30_000, async () => ({ ok: true }), {
      budget: new FrameBudget(),
      log: pino({ level: 'silent' }),
      decode: (f) => f.byteLength,
    })
    await a.dial(b.getMultiaddrs()[0]!)
    const frame = randomBytes(FRAME_KB * 1024)
    for (let i = 0; i < 20; i++) await requestFrame(a, b.peerId, protocol, frame, 30_000) // warm up
    const [t0, cpu0] = [performance.now(), process.cpuUsage()]
    for (let i = 0; i < FRAMES; i++) await requestFrame(a, b.peerId, protocol, frame, 30_000)
    const [ms, cpu] = [performance.now() - t0, process.cpuUsage(cpu0)]
    const mb = (FRAMES * FRAME_KB) / 1024
    return { mbPerSecond: mb / (ms / 1000), cpuMsPerMb: (cpu.user + cpu.system) / 1000 / mb }
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }
}

console.log(`binge transport benchmark: node ${process.version}, ${FRAMES} frames of ${FRAME_KB} KB a round, psk`)
const results: Record<Stack, Array<{ mbPerSecond: number; cpuMsPerMb: number }>> = { binge: [], libp2p: [] }
for (let round = 1; round <= ROUNDS; round++) {
  for (const stack of ['binge', 'libp2p'] as const) {
    const r = await run(stack)
    results[stack].push(r)
    line(`round ${round}, ${stack}`, `${fmt.int(r.mbPerSecond)} MB/s, ${r.cpuMsPerMb.toFixed(1)} ms CPU per MB`)
  }
}
const ratios = results.binge.map((r, i) => r.cpuMsPerMb / results.libp2p[i]!.cpuMsPerMb)
line('CPU per MB, binge / libp2p', ratios.map((r) => r.toFixed(2)).join(', '))
console.log(JSON.stringify({ transport: results, cpuRatio: ratios }))

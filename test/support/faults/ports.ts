// Fixed ports for fault tests, and how many events one worker holds in flight.

import net from 'node:net'

/** Events one worker dequeues at once and holds in flight until its output answered (src/pipeline/workers.ts). */
export const WORKER_BATCH = 32

/**
 * Ask the OS for `n` free ports on 127.0.0.1 (bind port 0, read it, close), to reuse
 * across restarts. All are held open until all are known, so no two are the same.
 */
export async function reservePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer()
          server.once('error', reject)
          server.listen(0, '127.0.0.1', () => resolve(server))
        }),
    ),
  )
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port)
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  return ports
}

// The mesh is closed by default: a node whose libp2p port can be reached from beyond
// its own machine must say who may join (a `psk`, or an `allowPeers` list), or say out
// loud that anyone may (`insecure: true`). A config that does neither is refused at
// start and by `binge validate`, like any other config problem (exit 2).
import { z } from 'zod'

/** Does this listen multiaddr accept connections from other machines? */
export function listensBeyondLoopback(listen: string): boolean {
  const m = /^\/(ip4|ip6|dns4|dns6|dns)\/([^/]+)/.exec(listen.trim())
  if (!m) return true
  const [, proto, host] = m
  if (proto === 'ip4') return !host!.startsWith('127.')
  if (proto === 'ip6') return host !== '::1'
  return host !== 'localhost'
}

export function closedByDefault() {
  return z.superRefine(
    (mesh: { listen?: unknown; psk?: unknown; allowPeers?: unknown; insecure?: unknown }, ctx) => {
      if (typeof mesh.listen !== 'string' || !listensBeyondLoopback(mesh.listen)) return
      const hasKey = typeof mesh.psk === 'string' && mesh.psk.trim() !== ''
      const hasAllowList = Array.isArray(mesh.allowPeers) && mesh.allowPeers.length > 0
      if (hasKey || hasAllowList || mesh.insecure === true) return
      ctx.addIssue({
        code: 'custom',
        path: ['psk'],
        message:
          `the mesh listens beyond loopback (${mesh.listen}) and names no key: any machine that reaches the port could join and hand this node events. ` +
          'Set psk to a key every node shares (make one with `binge keygen`; e.g. psk: ${BINGE_MESH_KEY}), ' +
          "or allowPeers to the peer ids that may connect (`binge id --config FILE` prints a node's), " +
          'or insecure: true to run an open mesh on purpose',
      })
    },
    { when: () => true },
  )
}

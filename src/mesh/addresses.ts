// Bootstrap entries as people write them: `host:port`, `1.2.3.4:7000`, or a multiaddr
// with or without `/p2p/<peer id>`. A host name becomes /dns4 so compose service names
// resolve; the peer id, when absent, is learned during the handshake.
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { splitHostPort } from '../util/host-port.js'

const ipv4 = /^\d{1,3}(\.\d{1,3}){3}$/

export function toMultiaddr(entry: string): Multiaddr {
  const text = entry.trim()
  if (text.startsWith('/')) return multiaddr(text)
  const parsed = splitHostPort(text)
  if (!parsed || parsed.host === '' || parsed.port < 1) throw new Error(`"${entry}" is neither host:port nor a multiaddr`)
  const { host, port } = parsed
  const proto = ipv4.test(host) ? 'ip4' : host.includes(':') ? 'ip6' : 'dns4'
  return multiaddr(`/${proto}/${host}/tcp/${port}`)
}

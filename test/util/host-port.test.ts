// One host:port parser for every reader: config, HTTP listen, bootstrap entries, announced addresses.
import { describe, expect, it } from 'vitest'
import { joinHostPort, splitHostPort } from '../../src/util/host-port.js'
import { toMultiaddr } from '../../src/mesh/addresses.js'

describe('host:port', () => {
  it('reads names, IPv4, bracketed IPv6 and an empty host; refuses the rest', () => {
    expect(splitHostPort('node-a:7000')).toEqual({ host: 'node-a', port: 7000 })
    expect(splitHostPort('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 })
    expect(splitHostPort('[::1]:8080')).toEqual({ host: '::1', port: 8080 })
    expect(splitHostPort(':8080')).toEqual({ host: '', port: 8080 })
    for (const bad of ['node-a', 'node-a:', 'a:65536', '::1:80', 'a b:80', 'a:8o']) expect(splitHostPort(bad), bad).toBeUndefined()
    expect(joinHostPort('::1', 80)).toBe('[::1]:80')
    expect(joinHostPort('10.0.0.1', '80')).toBe('10.0.0.1:80')
  })

  it('bootstrap entries become multiaddrs, and a port of 0 or no host is refused', () => {
    expect(toMultiaddr('node-b:7000').toString()).toBe('/dns4/node-b/tcp/7000')
    expect(toMultiaddr('[::1]:7000').toString()).toBe('/ip6/::1/tcp/7000')
    expect(() => toMultiaddr(':7000')).toThrow(/neither host:port nor a multiaddr/)
    expect(() => toMultiaddr('a:0')).toThrow(/neither host:port nor a multiaddr/)
  })
})

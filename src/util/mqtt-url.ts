// A broker URL (`mqtt://host:1883`, `mqtts://host:8883`, `tcp://`, `tls://`, `ssl://`)
// as MQTT.js connection options, read with the WHATWG URL parser. Handing MQTT.js the
// string makes it call Node's legacy `url.parse`, which Node 24 warns about at every
// start (DEP0169). Credentials in the URL are decoded; explicit options win over them.

export interface BrokerOptions {
  protocol: 'mqtt' | 'mqtts'
  host: string
  port: number
  username?: string
  password?: string
}

const secure = new Set(['mqtts', 'tls', 'ssl'])

export function brokerOptions(url: string): BrokerOptions {
  const parsed = new URL(url)
  const scheme = parsed.protocol.replace(/:$/, '')
  const protocol = secure.has(scheme) ? 'mqtts' : 'mqtt'
  // IPv6 literals come back bracketed: `[::1]`; the socket wants `::1`.
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1')
  const port = parsed.port === '' ? (protocol === 'mqtts' ? 8883 : 1883) : Number(parsed.port)
  return {
    protocol,
    host,
    port,
    ...(parsed.username === '' ? {} : { username: decodeURIComponent(parsed.username) }),
    ...(parsed.password === '' ? {} : { password: decodeURIComponent(parsed.password) }),
  }
}

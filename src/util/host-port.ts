// `host:port` as people write it, parsed in one place for every reader of one: config
// checks, the HTTP listener, bootstrap entries and the HTTP address a peer announces.
// An IPv6 host is written in brackets (`[::1]:8080`); an empty host (`:8080`) is kept
// empty for the caller to read ("every interface", or "the address you reach me at").

const hostPort = /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]*):(\d{1,5})$/

export function splitHostPort(text: string): { host: string; port: number } | undefined {
  const m = hostPort.exec(text)
  if (!m) return undefined
  const port = Number(m[2])
  if (port > 65535) return undefined
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port }
}

/** `host:port`, bracketing an IPv6 host. */
export function joinHostPort(host: string, port: number | string): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`
}

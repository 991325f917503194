// The page's calls to the node that served it, and the bearer token for the routes that
// return event data. The token lives in this tab only (sessionStorage: gone when the
// tab closes, never sent anywhere but this node's own API).

const tokenKey = 'binge.token'

export function token(): string {
  try {
    return sessionStorage.getItem(tokenKey) ?? ''
  } catch {
    return ''
  }
}

export function setToken(value: string): void {
  try {
    if (value === '') sessionStorage.removeItem(tokenKey)
    else sessionStorage.setItem(tokenKey, value)
  } catch {
    // Storage refused (a private mode): the token is asked again after a reload.
  }
}

/** A JSON answer, or the error the node gave (status and its message). */
export type Answer<T> = { ok: true; body: T } | { ok: false; status: number; error: string }

export async function call<T>(path: string, init: { method?: string; body?: unknown; timeoutMs?: number } = {}): Promise<Answer<T>> {
  const headers: Record<string, string> = {}
  const bearer = token()
  if (bearer !== '') headers.authorization = `Bearer ${bearer}`
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  let res: Response
  try {
    res = await fetch(path, {
      method: init.method ?? 'GET',
      headers,
      cache: 'no-store',
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(init.timeoutMs ?? 5_000),
    })
  } catch (err) {
    return { ok: false, status: 0, error: `the node did not answer (${(err as Error).name})` }
  }
  let body: unknown
  try {
    body = await res.json()
  } catch {
    return { ok: false, status: res.status, error: `the node answered ${res.status} without JSON` }
  }
  if (!res.ok) return { ok: false, status: res.status, error: String((body as { error?: unknown })?.error ?? res.status) }
  return { ok: true, body: body as T }
}

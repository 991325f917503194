// The dashboard's routes (docs/design.md §8): GET / (the page, its script inline, under a
// CSP that allows exactly it), GET /dashboard/node.json (this node alone; what peers
// read from each other) and GET /dashboard/mesh.json (every node this one knows, what
// the page polls). The JSON holds counts, rates and names, no event data, so it is open
// like /stats; traces and dead letters keep their bearer token.
// One mesh view is computed at a time and reused for a moment: several open pages, or a
// page that polls fast, do not multiply the requests this node makes to its peers.
import type { Hono } from 'hono'
import type { NodeApi } from '../api.js'
import { type FetchView, fetchPeerView, meshDashboard, nodeDashboard } from './mesh-view.js'
import { dashboardCsp, dashboardPage } from './page.generated.js'
import type { MeshDashboard } from './types.js'

/** A mesh view younger than this is served again rather than recomputed. */
const reuseMs = 500

export interface DashboardOptions {
  authRequired: boolean
  /** How a peer's figures are read (tests replace it). */
  fetchView?: FetchView
}

export function dashboardRoutes(app: Hono, node: NodeApi, options: DashboardOptions): void {
  let last: { at: number; view: Promise<MeshDashboard> } | undefined
  const fetchView = options.fetchView ?? fetchPeerView

  app.get('/', (c) =>
    c.html(dashboardPage, 200, {
      'content-security-policy': dashboardCsp,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-cache',
    }),
  )
  app.get('/dashboard/node.json', (c) => c.json(nodeDashboard(node, options.authRequired)))
  app.get('/dashboard/mesh.json', async (c) => {
    const now = Date.now()
    if (!last || now - last.at > reuseMs) {
      const view = meshDashboard(nodeDashboard(node, options.authRequired), fetchView)
      last = { at: now, view }
      // A failed view is not kept: the next request computes a fresh one.
      view.catch(() => {
        if (last?.view === view) last = undefined
      })
    }
    return c.json(await last.view)
  })
}

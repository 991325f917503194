// The event finder: an id in, its trace out (GET /events/ID), each step with the node
// it happened on, followed across handoffs by the node. An id with no trace here may be
// on the node that first took it: the answer links to the other nodes' pages.
import type { MeshDashboard } from '../types.js'
import { call } from './api.js'
import { fill, h } from './dom.js'
import { clock } from './format.js'

interface TraceStep {
  state: string
  node: string
  at: string
  pipeline?: string
  detail?: string
}

function stateClass(state: string): string {
  if (state === 'processed') return 'ok'
  if (state === 'deadlettered' || state.startsWith('failed') || state === 'refused' || state === 'unreachable') return 'bad'
  if (state === 'filtered') return 'filtered'
  if (state.startsWith('handed') || state === 'takenBack') return 'moved'
  return ''
}

export async function find(id: string, mesh: MeshDashboard | undefined, onAuth: () => void): Promise<void> {
  const wanted = id.trim()
  if (wanted === '') return
  fill('finder-result', h('p', { class: 'muted' }, `looking for ${wanted}…`))
  const answer = await call<{ id: string; node: string; trace: TraceStep[] }>(`/events/${encodeURIComponent(wanted)}`)
  if (!answer.ok) {
    if (answer.status === 401) onAuth()
    const others = (mesh?.nodes ?? []).filter((n) => !n.self && n.http && n.state !== 'unreachable')
    fill(
      'finder-result',
      h('p', { class: answer.status === 404 ? 'muted' : 'problem' }, answer.error),
      answer.status === 404 && others.length > 0
        ? h(
            'p',
            { class: 'muted' },
            'A trace starts on the node that took the event; try it on ',
            ...others.flatMap((n, i) => [
              i > 0 ? ', ' : '',
              h('a', { href: `${n.http}/#find=${encodeURIComponent(wanted)}`, target: '_blank', rel: 'noopener' }, n.node),
            ]),
          )
        : null,
    )
    return
  }
  const steps = answer.body.trace
  fill(
    'finder-result',
    h('p', { class: 'muted' }, `${steps.length} steps on ${new Set(steps.map((s) => s.node)).size} node(s)`),
    h(
      'table',
      { class: 'trace', 'data-trace': wanted },
      h(
        'thead',
        {},
        h('tr', {}, h('th', {}, 'time'), h('th', {}, 'node'), h('th', {}, 'state'), h('th', {}, 'pipeline'), h('th', {}, 'detail')),
      ),
      h(
        'tbody',
        {},
        ...steps.map((s) =>
          h(
            'tr',
            {},
            h('td', { class: 'mono' }, clock(s.at)),
            h('td', {}, s.node),
            h('td', {}, h('span', { class: `state ${stateClass(s.state)}` }, s.state)),
            h('td', {}, s.pipeline ?? ''),
            h('td', { class: 'detail' }, s.detail ?? ''),
          ),
        ),
      ),
    ),
  )
}

// This node's dead letters (GET /deadletter), newest first as the node lists them, each
// with its pipeline, error and attempts, and a replay button (POST /deadletter/replay).
import { call } from './api.js'
import { fill, h } from './dom.js'
import { clock, count } from './format.js'

interface DeadLetter {
  pipeline: string
  error: string
  attempts: number
  at: number
  event: { id: string }
}

const shown = 50

export async function refreshDeadletters(onAuth: () => void, onFind: (id: string) => void): Promise<void> {
  const answer = await call<{ count: number; events: DeadLetter[] }>(`/deadletter?limit=${shown}`)
  if (!answer.ok) {
    if (answer.status === 401) onAuth()
    fill('deadletters', h('p', { class: answer.status === 401 ? 'muted' : 'problem' }, answer.error))
    return
  }
  const { count: total, events } = answer.body
  const replay = async (ids?: string[]) => {
    const done = await call<{ count: number }>('/deadletter/replay', { method: 'POST', body: ids ? { ids } : {} })
    fill('deadletter-note', done.ok ? `replayed ${count(done.body.count)}` : `replay failed: ${done.error}`)
    await refreshDeadletters(onAuth, onFind)
  }
  if (total === 0) {
    fill('deadletters', h('p', { class: 'muted', 'data-field': 'deadletter-count' }, 'No dead letters on this node.'))
    return
  }
  fill(
    'deadletters',
    h(
      'div',
      { class: 'dl-head' },
      h(
        'span',
        { 'data-field': 'deadletter-count' },
        `${count(total)} dead letter${total === 1 ? '' : 's'}${total > events.length ? `, the first ${events.length} shown` : ''}`,
      ),
      h('button', { type: 'button', class: 'secondary', onclick: () => void replay() }, 'Replay all'),
    ),
    h(
      'table',
      { class: 'deadletters' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'event'),
          h('th', {}, 'pipeline'),
          h('th', {}, 'error'),
          h('th', { class: 'num' }, 'tries'),
          h('th', {}, 'at'),
          h('th', {}),
        ),
      ),
      h(
        'tbody',
        {},
        ...events.map((d) =>
          h(
            'tr',
            { 'data-deadletter': d.event.id },
            h(
              'td',
              { class: 'mono' },
              h('a', { href: `#find=${encodeURIComponent(d.event.id)}`, onclick: () => onFind(d.event.id) }, d.event.id),
            ),
            h('td', {}, d.pipeline),
            h('td', { class: 'error' }, d.error),
            h('td', { class: 'num' }, count(d.attempts)),
            h('td', { class: 'mono' }, clock(d.at)),
            h('td', {}, h('button', { type: 'button', onclick: () => void replay([d.event.id]) }, 'Replay')),
          ),
        ),
      ),
    ),
  )
}

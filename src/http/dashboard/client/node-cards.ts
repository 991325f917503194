// One card per node: its state, accepting or refusing, its queue against the high-water
// mark and against the hard cap (NiFi bands, the low-water mark as a tick), its rates and
// how long until its queue is empty or full at the current pace.
import type { MeshNodeCard } from '../types.js'
import { h } from './dom.js'
import { ago, band, count, duration, percent, rate } from './format.js'

function meter(label: string, value: number, of: number, tick?: { at: number; title: string }): HTMLElement {
  const fraction = of > 0 ? value / of : 0
  const bar = h('div', { class: 'bar', title: `${count(value)} of ${count(of)}` }, h('div', { class: `fill ${band(fraction)}` }))
  ;(bar.firstChild as HTMLElement).style.width = `${Math.min(100, fraction * 100)}%`
  if (tick && of > 0) {
    const mark = h('div', { class: 'tick', title: tick.title })
    mark.style.left = `${Math.min(100, (tick.at / of) * 100)}%`
    bar.append(mark)
  }
  return h(
    'div',
    { class: 'meter' },
    h('span', { class: 'meter-label' }, label),
    bar,
    h('span', { class: `meter-pct ${band(fraction)}` }, percent(fraction)),
  )
}

/** "empties in 12 s", "full in 3 m", or "steady", from the net rate at which its queue grows. */
export function outlook(card: MeshNodeCard): string {
  const q = card.queue
  const held = q.unprocessed + q.inflight
  const r = card.detail?.rates
  if (!r) return card.drainRate > 0 && held > 0 ? `drains in ~${duration(held / card.drainRate)}` : 'idle'
  const net = r.in + r.handedIn - r.finished - r.handedOff
  if (net < -0.05 && held > 0) return `empties in ${duration(held / -net)}`
  if (net > 0.05) return `full in ${duration(Math.max(0, q.maxEvents - held) / net)}`
  return held > 0 ? 'steady' : 'empty'
}

function fact(name: string, value: string, field?: string): HTMLElement {
  return h('div', { class: 'fact' }, h('dt', {}, name), h('dd', field ? { 'data-field': field } : {}, value))
}

export function nodeCard(card: MeshNodeCard): HTMLElement {
  const q = card.queue
  const unknown = card.source === 'gossip' && card.state === 'unreachable'
  const head = h(
    'div',
    { class: 'card-head' },
    h('span', { class: 'card-name' }, card.node),
    h('span', { class: `badge ${card.state}`, 'data-field': 'state' }, card.state),
    card.state === 'unreachable'
      ? null
      : h('span', { class: `badge ${card.accepting ? 'accepting' : 'refusing'}` }, card.accepting ? 'accepting' : 'refusing'),
    card.self ? h('span', { class: 'badge self' }, 'this node') : null,
  )
  const meters = unknown
    ? h('p', { class: 'muted' }, `last announced ${count(q.unprocessed)} queued, ${ago(card.heardAgoMs)}`)
    : h(
        'div',
        { class: 'meters' },
        meter('high-water', q.unprocessed, q.highWaterMark, { at: q.lowWaterMark, title: `low-water mark ${count(q.lowWaterMark)}` }),
        meter('cap', q.unprocessed + q.inflight, q.maxEvents, { at: q.highWaterMark, title: `high-water mark ${count(q.highWaterMark)}` }),
      )
  const facts = h(
    'dl',
    { class: 'facts' },
    fact('queued', count(q.unprocessed), 'depth'),
    fact('in flight', count(q.inflight)),
    fact('marks', `${count(q.lowWaterMark)} / ${count(q.highWaterMark)}`),
    fact('cap', count(q.maxEvents)),
    fact('in', card.inRate === undefined ? '–' : rate(card.inRate)),
    fact('drain', rate(card.drainRate), 'drain'),
    fact('outlook', unknown ? '–' : outlook(card)),
    fact('heard', card.self ? 'serving this page' : ago(card.heardAgoMs)),
    q.handingOff !== undefined ? fact('handing off', count(q.handingOff)) : null,
    q.deadletter !== undefined ? fact('dead letters', count(q.deadletter)) : null,
  )
  const link =
    !card.self && card.http && card.state !== 'unreachable'
      ? h('a', { class: 'open', href: `${card.http}/`, target: '_blank', rel: 'noopener' }, 'open its page ↗')
      : null
  return h(
    'article',
    { class: `card ${card.state}`, 'data-node': card.node },
    head,
    meters,
    facts,
    card.problem ? h('p', { class: 'problem' }, card.problem) : null,
    link,
  )
}

// Per node, per pipeline and step: events in and out, intended drops (filtered) apart
// from failures, dead letters, and the p95 latency of the last runs (what `vector top`
// shows per component).
import type { MeshNodeCard, PipelineFigures, StepFigures } from '../types.js'
import { h } from './dom.js'
import { count, latency } from './format.js'

const columns = ['in', 'out', 'filtered', 'failed', 'dead-lettered', 'p95']

function cells(f: PipelineFigures | StepFigures): HTMLElement[] {
  return [
    h('td', { class: 'num' }, count(f.in)),
    h('td', { class: 'num' }, count(f.out)),
    h('td', { class: `num filtered${f.filtered > 0 ? ' some' : ''}` }, count(f.filtered)),
    h('td', { class: `num failed${f.failed > 0 ? ' some' : ''}` }, count(f.failed)),
    h('td', { class: `num failed${f.deadlettered > 0 ? ' some' : ''}` }, count(f.deadlettered)),
    h('td', { class: 'num' }, latency(f.p95Ms)),
  ]
}

function rows(p: PipelineFigures): HTMLElement[] {
  return [
    h('tr', { class: 'pipe', 'data-pipeline': p.name }, h('td', {}, p.name), ...cells(p)),
    ...p.steps.map((step, i) =>
      h(
        'tr',
        { class: 'step' },
        h('td', {}, h('span', { class: 'tree' }, i === p.steps.length - 1 ? '└ ' : '├ '), `${step.index + 1}. ${step.kind}`),
        ...cells(step),
      ),
    ),
  ]
}

export function pipelineTable(card: MeshNodeCard): HTMLElement {
  const title = h('h3', {}, card.node, card.self ? h('span', { class: 'muted' }, ' · this node') : null)
  const detail = card.detail
  if (!detail) {
    const why = card.problem ? `no figures: ${card.problem}` : 'no figures'
    const known = card.pipelineNames.length > 0 ? ` (runs ${card.pipelineNames.join(', ')})` : ''
    return h('section', { class: 'pipes', 'data-pipes': card.node }, title, h('p', { class: 'muted' }, why + known))
  }
  if (detail.pipelines.length === 0) {
    return h('section', { class: 'pipes', 'data-pipes': card.node }, title, h('p', { class: 'muted' }, 'a relay: no pipelines of its own'))
  }
  return h(
    'section',
    { class: 'pipes', 'data-pipes': card.node },
    title,
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, h('th', {}, 'pipeline / step'), ...columns.map((c) => h('th', { class: 'num' }, c)))),
      h('tbody', {}, ...detail.pipelines.flatMap(rows)),
    ),
  )
}

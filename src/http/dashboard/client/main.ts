// The dashboard page's script (docs/design.md §8), bundled at build time into the page
// that every node serves at GET / (scripts/bundle-dashboard.mjs). It polls the serving
// node's GET /dashboard/mesh.json every second, with no overlap, and redraws: the mesh
// map, a card per node, the pipeline tables; dead letters every few seconds. A node that
// stops answering greys the page and the polling goes on, so it comes back by itself.
import type { MeshDashboard } from '../types.js'
import { call, setToken, token } from './api.js'
import { refreshDeadletters } from './deadletters.js'
import { fill, h } from './dom.js'
import { find } from './finder.js'
import { clock, count, rate } from './format.js'
import { meshMap } from './mesh-map.js'
import { nodeCard } from './node-cards.js'
import { pipelineTable } from './pipelines.js'

const pollMs = 1_000
const deadletterEveryMs = 3_000

let mesh: MeshDashboard | undefined
let updates = 0
let lastDeadletters = 0
let tokenRefused = false

function summary(m: MeshDashboard): HTMLElement[] {
  const ready = m.nodes.filter((n) => n.state === 'ready').length
  const unreachable = m.nodes.filter((n) => n.state === 'unreachable').length
  const queued = m.nodes.reduce((sum, n) => sum + n.queue.unprocessed, 0)
  const moving = m.links.reduce((sum, l) => sum + l.aToB + l.bToA, 0)
  const stat = (value: string, label: string, cls = '') => h('div', { class: `stat ${cls}` }, h('b', {}, value), h('span', {}, label))
  return [
    stat(String(m.nodes.length), m.nodes.length === 1 ? 'node' : 'nodes'),
    stat(String(ready), 'ready', 'ok'),
    stat(String(unreachable), 'unreachable', unreachable > 0 ? 'bad' : ''),
    stat(count(queued), 'queued in the mesh'),
    stat(rate(moving), 'handed off, last minute'),
  ]
}

function render(m: MeshDashboard): void {
  const byName = [...m.nodes].sort((a, b) => (a.self ? -1 : b.self ? 1 : a.node.localeCompare(b.node)))
  document.title = `binge · ${m.self}`
  fill('self-name', m.self)
  fill('summary', ...summary(m))
  fill('map', meshMap(m))
  fill('cards', ...byName.map(nodeCard))
  fill('pipelines', ...byName.map(pipelineTable))
  fill('dl-node', m.self)
}

function showToken(): void {
  const form = document.getElementById('token-form')
  if (!form || !mesh?.authRequired) return
  form.hidden = false
  const set = token() !== ''
  fill(
    'token-state',
    set ? 'token kept in this tab' : tokenRefused ? 'the token was refused; enter it again' : 'token needed for traces and dead letters',
  )
  ;(document.getElementById('token-clear') as HTMLButtonElement).hidden = !set
  form.classList.toggle('wanted', !set)
}

/** A guarded route answered 401: the token kept (if any) is wrong, so it is dropped and asked again. */
function needToken(): void {
  tokenRefused = token() !== '' || tokenRefused
  setToken('')
  showToken()
}

async function poll(): Promise<void> {
  const answer = await call<MeshDashboard>('/dashboard/mesh.json', { timeoutMs: 4_000 })
  const live = document.getElementById('live')!
  if (answer.ok) {
    mesh = answer.body
    updates++
    render(mesh)
    showToken()
    document.body.classList.remove('offline')
    live.dataset.updates = String(updates)
    fill('live', h('span', { class: 'dot' }), `live · updated ${clock(Date.now())}`)
  } else {
    document.body.classList.add('offline')
    fill('live', h('span', { class: 'dot' }), `${mesh?.self ?? 'the node'} is not answering (${answer.error}); retrying`)
  }
  if (Date.now() - lastDeadletters >= deadletterEveryMs && (!mesh?.authRequired || token() !== '')) {
    lastDeadletters = Date.now()
    await refreshDeadletters(needToken, runFind)
  } else if (mesh?.authRequired && token() === '') {
    fill('deadletters', h('p', { class: 'muted' }, 'Enter the node’s token above to list its dead letters.'))
  }
}

function runFind(id: string): void {
  ;(document.getElementById('find-id') as HTMLInputElement).value = id
  history.replaceState(null, '', `#find=${encodeURIComponent(id)}`)
  void find(id, mesh, needToken)
}

async function loop(): Promise<void> {
  for (;;) {
    const started = Date.now()
    try {
      await poll()
    } catch (err) {
      fill('live', `page error: ${(err as Error).message}`)
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(100, pollMs - (Date.now() - started))))
  }
}

function wire(): void {
  document.getElementById('finder')!.addEventListener('submit', (event) => {
    event.preventDefault()
    runFind((document.getElementById('find-id') as HTMLInputElement).value)
  })
  document.getElementById('token-form')!.addEventListener('submit', (event) => {
    event.preventDefault()
    const input = document.getElementById('token-input') as HTMLInputElement
    setToken(input.value.trim())
    input.value = ''
    tokenRefused = false
    lastDeadletters = 0
    showToken()
  })
  document.getElementById('token-clear')!.addEventListener('click', () => {
    setToken('')
    showToken()
  })
  const hash = /^#find=(.+)$/.exec(location.hash)
  if (hash) runFind(decodeURIComponent(hash[1]!))
}

wire()
void loop()

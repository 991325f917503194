// The mesh drawn as a graph: a circle per node, coloured by its queue against its
// high-water mark (NiFi bands) and outlined by its state; a pair of arrows per link,
// one each way, thicker the more events per second were handed off that way over the
// last minute. Positions are fixed by name order, so the picture does not jump.
import type { MeshDashboard, MeshLink, MeshNodeCard } from '../types.js'
import { s } from './dom.js'
import { band, count, rate } from './format.js'

const width = 640
const height = 400
/** A node's circle: smaller as the ring fills, so 16 nodes still fit side by side. */
function radiusFor(nodes: number): number {
  return Math.max(14, Math.min(34, 34 - (nodes - 6) * 2.5))
}

interface Point {
  x: number
  y: number
}

function layout(nodes: MeshNodeCard[]): Map<string, Point> {
  // The serving node first, the rest by name: a stable ring.
  const ordered = [...nodes].sort((a, b) => (a.self ? -1 : b.self ? 1 : a.node.localeCompare(b.node)))
  const at = new Map<string, Point>()
  const n = ordered.length
  for (const [i, card] of ordered.entries()) {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / n
    at.set(
      card.node,
      n === 1
        ? { x: width / 2, y: height / 2 }
        : { x: width / 2 + Math.cos(angle) * (width / 2 - 110), y: height / 2 - 6 + Math.sin(angle) * (height / 2 - 70) },
    )
  }
  return at
}

export function fillOf(card: MeshNodeCard): string {
  if (card.state === 'unreachable') return 'unreachable'
  const hw = card.queue.highWaterMark
  return hw > 0 ? band(card.queue.unprocessed / hw) : 'green'
}

function arrow(from: Point, to: Point, radius: number, perSecond: number, label: string, down: boolean): SVGElement {
  const dx = to.x - from.x
  const dy = to.y - from.y
  const length = Math.hypot(dx, dy) || 1
  const ux = dx / length
  const uy = dy / length
  // Offset to the arrow's left, so the two directions of a link lie side by side; stop at the circles' edges.
  const ox = -uy * 6
  const oy = ux * 6
  const x1 = from.x + ux * (radius + 4) + ox
  const y1 = from.y + uy * (radius + 4) + oy
  const x2 = to.x - ux * (radius + 8) + ox
  const y2 = to.y - uy * (radius + 8) + oy
  const active = perSecond > 0
  const widthPx = active ? Math.min(7, 2 + Math.log10(1 + perSecond) * 2) : 1.5
  const mx = (x1 + x2) / 2 - uy * 14
  const my = (y1 + y2) / 2 + ux * 14
  return s(
    'g',
    { class: `link${active ? ' active' : ''}${down ? ' down' : ''}`, 'data-link': label },
    s('line', { x1, y1, x2, y2, 'stroke-width': widthPx.toFixed(1), 'marker-end': active ? 'url(#arrow-on)' : 'url(#arrow-off)' }),
    active ? s('text', { x: mx, y: my + 4, class: 'link-rate' }, rate(perSecond)) : null,
    s('title', {}, `${label.replace('>', ' → ')}: ${rate(perSecond)} handed off (mean over the last minute)`),
  )
}

function linkGroup(link: MeshLink, at: Map<string, Point>, radius: number, down: Set<string>): SVGElement | null {
  const a = at.get(link.a)
  const b = at.get(link.b)
  if (!a || !b) return null
  // A link to a node that is gone is drawn dashed: its rates are the last minute's.
  const gone = down.has(link.a) || down.has(link.b)
  return s(
    'g',
    {},
    arrow(a, b, radius, link.aToB, `${link.a}>${link.b}`, gone),
    arrow(b, a, radius, link.bToA, `${link.b}>${link.a}`, gone),
  )
}

function nodeGroup(card: MeshNodeCard, p: Point, radius: number): SVGElement {
  const depth = card.state === 'unreachable' && card.source === 'gossip' ? '?' : count(card.queue.unprocessed)
  return s(
    'g',
    { class: `map-node ${fillOf(card)} ${card.state}${card.self ? ' self' : ''}`, 'data-map-node': card.node },
    s('circle', { cx: p.x, cy: p.y, r: radius }),
    s('text', { x: p.x, y: p.y + (radius >= 26 ? 2 : 5), class: 'map-depth' }, depth),
    radius >= 26 ? s('text', { x: p.x, y: p.y + 15, class: 'map-unit' }, 'queued') : null,
    s('text', { x: p.x, y: p.y + radius + 17, class: 'map-name' }, card.node),
    s('text', { x: p.x, y: p.y + radius + 31, class: 'map-state' }, card.self ? `${card.state} · this node` : card.state),
    s('title', {}, `${card.node}: ${card.state}, ${count(card.queue.unprocessed)} queued`),
  )
}

export function meshMap(mesh: MeshDashboard): SVGElement {
  const radius = radiusFor(mesh.nodes.length)
  const at = layout(mesh.nodes)
  const down = new Set(mesh.nodes.filter((n) => n.state === 'unreachable').map((n) => n.node))
  const marker = (id: string) =>
    s(
      'marker',
      { id, viewBox: '0 0 10 10', refX: 5, refY: 5, markerWidth: 4, markerHeight: 4, orient: 'auto-start-reverse' },
      s('path', { d: 'M 0 0 L 10 5 L 0 10 z' }),
    )
  return s(
    'svg',
    { viewBox: `0 0 ${width} ${height}`, class: 'map', role: 'img', 'aria-label': 'mesh map' },
    s('defs', {}, marker('arrow-on'), marker('arrow-off')),
    ...mesh.links.map((l) => linkGroup(l, at, radius, down)),
    ...mesh.nodes.map((card) => nodeGroup(card, at.get(card.node)!, radius)),
  )
}

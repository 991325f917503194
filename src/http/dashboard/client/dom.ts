// Tiny DOM builders for the dashboard page: every value from a node goes in as text
// (textContent, attributes), never as markup, so event data and peer answers cannot
// inject script. No framework: the page rebuilds a few sections each second.

export type Child = Node | string | number | null | undefined | false
type Attrs = Record<string, string | number | boolean | undefined | ((event: Event) => void)>

function apply(el: Element, attrs: Attrs | undefined, children: Child[]): void {
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === false) continue
    if (typeof value === 'function') el.addEventListener(key.replace(/^on/, ''), value)
    else el.setAttribute(key, value === true ? '' : String(value))
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    el.append(typeof child === 'object' ? child : document.createTextNode(String(child)))
  }
}

/** An HTML element: h('td', { class: 'num' }, 42). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  apply(el, attrs, children)
  return el
}

const svgNs = 'http://www.w3.org/2000/svg'

/** An SVG element: s('circle', { r: 30 }). */
export function s(tag: string, attrs?: Attrs, ...children: Child[]): SVGElement {
  const el = document.createElementNS(svgNs, tag)
  apply(el, attrs, children)
  return el
}

/** Replace what `id` holds with `children`. */
export function fill(id: string, ...children: Child[]): void {
  const el = document.getElementById(id)
  if (!el) return
  el.replaceChildren()
  apply(el, undefined, children)
}

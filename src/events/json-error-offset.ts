// Where does a JSON text first go wrong? V8's JSON.parse names a position for some
// errors but not for an unexpected token, and its message quotes the body. Only on that
// error path, this small scanner finds the offset so a 400 can say line and column.
// It is iterative (an explicit stack) so a hostile, deeply nested body cannot overflow.

const ws = new Set([' ', '\t', '\n', '\r'])
const literal = /^(?:true|false|null)/
const number = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/
// biome-ignore lint/suspicious/noControlCharactersInRegex: JSON forbids raw control characters in strings; this is that rule
const string = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/

/** The offset of the first character that makes `text` invalid JSON, or -1 if it is valid. */
export function jsonErrorOffset(text: string): number {
  let i = 0
  const skip = () => {
    while (i < text.length && ws.has(text[i]!)) i++
  }
  const match = (re: RegExp) => {
    const m = re.exec(text.slice(i, i + 1_000_000))
    if (!m) return false
    i += m[0].length
    return true
  }
  // Each frame: what the container expects next.
  const stack: Array<{ kind: 'array' | 'object'; expect: 'value-or-end' | 'value' | 'comma-or-end' | 'key-or-end' | 'key' | 'colon' }> = []
  let needValue = true
  for (;;) {
    skip()
    if (needValue) {
      const c = text[i]
      if (c === '{') {
        i++
        stack.push({ kind: 'object', expect: 'key-or-end' })
        needValue = false
        continue
      }
      if (c === '[') {
        i++
        stack.push({ kind: 'array', expect: 'value-or-end' })
        needValue = false
        continue
      }
      if (!(c === '"' ? match(string) : match(literal) || match(number))) return i
      needValue = false
      const top = stack[stack.length - 1]
      if (!top) break
      top.expect = 'comma-or-end'
      continue
    }
    const top = stack[stack.length - 1]
    if (!top) break
    const c = text[i]
    const close = top.kind === 'array' ? ']' : '}'
    if ((top.expect === 'value-or-end' || top.expect === 'key-or-end' || top.expect === 'comma-or-end') && c === close) {
      i++
      stack.pop()
      const parent = stack[stack.length - 1]
      if (!parent) break
      parent.expect = 'comma-or-end'
      continue
    }
    if (top.expect === 'comma-or-end') {
      if (c !== ',') return i
      i++
      top.expect = top.kind === 'array' ? 'value' : 'key'
      continue
    }
    if (top.expect === 'value-or-end' || top.expect === 'value') {
      needValue = true
      continue
    }
    if (top.expect === 'key-or-end' || top.expect === 'key') {
      if (c !== '"' || !match(string)) return i
      top.expect = 'colon'
      continue
    }
    if (c !== ':') return i
    i++
    needValue = true
    // After the value, the object expects a comma or its end.
    top.expect = 'comma-or-end'
  }
  skip()
  return i < text.length ? i : -1
}

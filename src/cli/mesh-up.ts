// `binge mesh up [DIR]`: every *.yaml in DIR becomes a local `binge start` child with
// its log lines prefixed by the node's name. It waits for each node's /readyz, prints
// a table of node -> URL, and on Ctrl-C (or SIGTERM) stops every child by PID and
// waits for them, so nothing is left running.
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { loadConfig, splitHostPort } from '../config/index.js'
import { reportConfigError } from './validate.js'

const colours = [36, 33, 35, 32, 34, 31]
const cliPath = fileURLToPath(new URL('./main.js', import.meta.url))

interface Member {
  name: string
  file: string
  url: string
  child: ChildProcess
  exited: Promise<number | null>
}

function prefixLines(stream: NodeJS.ReadableStream, prefix: string, out: NodeJS.WritableStream): void {
  createInterface({ input: stream }).on('line', (line) => out.write(`${prefix} ${line}\n`))
}

async function waitReady(m: Member, deadline: number): Promise<boolean> {
  while (Date.now() < deadline) {
    const exited = await Promise.race([m.exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 200))])
    if (exited) return false
    const ok = await fetch(`${m.url}/readyz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false)
    if (ok) return true
  }
  return false
}

export async function runMeshUp(dirArg: string | undefined): Promise<number> {
  const dir = resolve(dirArg ?? 'mesh-configs')
  let files: string[]
  try {
    files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(dir, f))
  } catch (err) {
    process.stderr.write(`binge mesh up: cannot read ${dir}: ${(err as Error).message}\n`)
    return 2
  }
  if (files.length === 0) {
    process.stderr.write(`binge mesh up: no *.yaml node configs in ${dir}\n`)
    return 2
  }
  // Validate all first: nothing starts half-configured.
  const urls: string[] = []
  for (const file of files) {
    try {
      const { host, port } = splitHostPort(loadConfig(file).http.listen) ?? { host: '127.0.0.1', port: 8080 }
      urls.push(`http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`)
    } catch (err) {
      return reportConfigError(file, err)
    }
  }

  const members: Member[] = files.map((file, i) => {
    const name = basename(file).replace(/\.ya?ml$/, '')
    // Own process group: a terminal's Ctrl-C reaches only us, and we stop each child once.
    const child = spawn(process.execPath, [cliPath, 'start', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    const prefix = `\x1b[${colours[i % colours.length]}m${name.padEnd(10)}|\x1b[0m`
    prefixLines(child.stdout!, prefix, process.stdout)
    prefixLines(child.stderr!, prefix, process.stderr)
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    return { name, file, url: urls[i]!, child, exited }
  })

  let stopping = false
  const stopAll = async (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    process.stdout.write(`\nbinge mesh up: stopping ${members.length} nodes\n`)
    for (const m of members) if (m.child.exitCode === null) m.child.kill(signal)
    const force = setTimeout(() => members.forEach((m) => m.child.exitCode === null && m.child.kill('SIGKILL')), 15_000)
    await Promise.all(members.map((m) => m.exited))
    clearTimeout(force)
  }
  const done = new Promise<number>((resolveDone) => {
    const onSignal = () => void stopAll('SIGTERM').then(() => resolveDone(0))
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    // A node that dies on its own takes the mesh down: a half mesh hides problems.
    for (const m of members) void m.exited.then((code) => {
      if (stopping) return
      process.stderr.write(`binge mesh up: ${m.name} exited with code ${code}; stopping the others\n`)
      void stopAll('SIGTERM').then(() => resolveDone(1))
    })
  })

  const deadline = Date.now() + 60_000
  const ready = await Promise.all(members.map((m) => waitReady(m, deadline)))
  if (!stopping) {
    const rows = members.map((m, i) => `  ${m.name.padEnd(12)} ${m.url.padEnd(26)} ${ready[i] ? 'ready' : 'NOT READY'}`)
    process.stdout.write(`\nbinge mesh up: ${members.length} nodes (Ctrl-C stops them all)\n  ${'node'.padEnd(12)} ${'http'.padEnd(26)} state\n${rows.join('\n')}\n\n`)
  }
  return done
}

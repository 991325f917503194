// The file output's rotation beyond the table (numbering after a restart, a line
// longer than the size, concurrent writers) and the forward output's two sides: the
// ids it derives, and how a mesh that cannot take the events fails the write.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { BingeError } from '../../src/errors.js'
import { createFileOutput } from '../../src/pipeline/outputs/file.js'
import { forwardedEvents, meshForwarder, noMesh, type RouteHandoff } from '../../src/pipeline/outputs/forward.js'
import { OutputFailure } from '../../src/pipeline/outputs/failure.js'
import { buildOutput } from '../../src/pipeline/registry.js'
import type { EventRecord } from '../../src/queue/types.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'binge-rotate-'))
  dirs.push(d)
  return d
}

const lines = (path: string) => readFileSync(path, 'utf8').split('\n').filter(Boolean)

describe('file rotation', () => {
  it('numbers on from the highest <path>.<n> already there, e.g. after a restart', async () => {
    const dir = tempDir()
    const path = join(dir, 'out.jsonl')
    writeFileSync(`${path}.7`, '{"old":1}\n')
    writeFileSync(`${path}.x`, 'not a rotation\n')
    writeFileSync(path, '{"n":0}\n') // 8 bytes, carried over from the last run
    const out = createFileOutput({ path, rotateBytes: 16 })
    await out.write([{ n: 1 }])
    await out.write([{ n: 2 }])
    await out.write([{ n: 3 }, { n: 4 }, { n: 5 }])
    await out.stop?.()
    // Rotation happens before a write that would pass the size, never after one that fills it.
    expect(readdirSync(dir).sort()).toEqual(['out.jsonl', 'out.jsonl.7', 'out.jsonl.8', 'out.jsonl.9', 'out.jsonl.x'])
    expect(lines(`${path}.8`)).toEqual(['{"n":0}', '{"n":1}'])
    expect(lines(`${path}.9`)).toEqual(['{"n":2}', '{"n":3}'])
    expect(lines(path)).toEqual(['{"n":4}', '{"n":5}'])
    expect(lines(`${path}.7`)).toEqual(['{"old":1}'])
  })

  it('gives a line longer than rotateBytes a file of its own, never splitting it', async () => {
    const dir = tempDir()
    const path = join(dir, 'out.jsonl')
    const out = createFileOutput({ path, rotateBytes: 10 })
    await out.write([{ n: 1 }, { long: 'x'.repeat(30) }, { n: 2 }])
    await out.stop?.()
    expect(lines(`${path}.1`)).toEqual(['{"n":1}'])
    expect(lines(`${path}.2`)).toEqual([`{"long":"${'x'.repeat(30)}"}`])
    expect(lines(path)).toEqual(['{"n":2}'])
  })

  it('keeps every line of concurrent writers across rotations, each file under the size', async () => {
    const dir = tempDir()
    const path = join(dir, 'out.jsonl')
    const out = createFileOutput({ path, rotateBytes: 100 })
    await Promise.all(Array.from({ length: 40 }, (_, i) => out.write([{ i: 100 + i }, { i: 200 + i }])))
    await out.stop?.()
    const files = readdirSync(dir)
    expect(files.length).toBeGreaterThan(5)
    const all = files.flatMap((f) => {
      const text = readFileSync(join(dir, f), 'utf8')
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(100)
      return lines(join(dir, f)).map((l) => (JSON.parse(l) as { i: number }).i)
    })
    expect(all.sort()).toEqual([...Array.from({ length: 40 }, (_, i) => 100 + i), ...Array.from({ length: 40 }, (_, i) => 200 + i)].sort())
  })
})

const envelope = (id: string, data: object) => ({
  id,
  pipeline: 'p',
  node: 'n1',
  origin: 'n0',
  receivedAt: '2024-05-01T12:00:00.000Z',
  data,
})

describe('forward output', () => {
  it('derives ids from the source id and the target pipeline, numbering the parts of a split event', () => {
    const events = forwardedEvents([envelope('a', { k: 1 }), envelope('b', { k: 2 }), envelope('a', { k: 3 })], 'sink')
    expect(events.map((e) => e.id)).toEqual(['a/sink', 'b/sink', 'a/sink/1'])
    expect(events[0]).toEqual({
      id: 'a/sink',
      pipeline: 'sink',
      origin: 'n0',
      receivedAt: Date.parse('2024-05-01T12:00:00.000Z'),
      hops: 0,
      data: { k: 1 },
    })
    // The same records give the same ids: a retried forward is a duplicate to the receiver.
    expect(forwardedEvents([envelope('a', { k: 1 })], 'sink')[0]!.id).toBe('a/sink')
  })

  it('fails for good, with a clear error, on a node without a mesh', async () => {
    const built = buildOutput({ forward: { pipeline: 'sink' } }, { pipeline: 'p', nodeId: 'n1', forward: noMesh })
    expect(built.envelope).toBe(true)
    const err = await built.output.write([envelope('a', {})]).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(OutputFailure)
    expect((err as OutputFailure).permanent).toBe(true)
    expect((err as OutputFailure).message).toBe(
      'forward to pipeline "sink" needs a mesh: this node runs alone (no mesh section in its config)',
    )
  })

  it('through the mesh: resolves when a peer took them, fails (to be retried) when none could or the outcome is unknown', async () => {
    const calls: Array<{ events: EventRecord[]; pipeline: string }> = []
    let answer: () => Promise<{ node: string } | undefined> = async () => ({ node: 'node-b' })
    const mesh: RouteHandoff = {
      handOffDirect: (events, _kind, pipeline) => {
        calls.push({ events, pipeline })
        return answer()
      },
    }
    let present: RouteHandoff | undefined
    const forward = meshForwarder(() => present)
    const events = forwardedEvents([envelope('a', {})], 'sink')

    const absent = await forward('sink', events).catch((e: unknown) => e as OutputFailure)
    expect(absent).toBeInstanceOf(OutputFailure)
    expect((absent as OutputFailure).permanent).toBe(true)

    present = mesh
    await forward('sink', events)
    expect(calls).toEqual([{ events, pipeline: 'sink' }])

    answer = async () => undefined
    const none = (await forward('sink', events).catch((e: unknown) => e)) as OutputFailure
    expect(none.permanent).toBe(false)
    expect(none.message).toBe('forward to pipeline "sink": no peer running it could take the events now')

    answer = async () => {
      throw new Error('stream reset')
    }
    const unknown = (await forward('sink', events).catch((e: unknown) => e)) as OutputFailure
    expect(unknown.permanent).toBe(false)
    expect(unknown.message).toBe('forward to pipeline "sink" failed: stream reset')

    // An event too big for any mesh frame never travels: retrying cannot help.
    answer = async () => {
      throw new BingeError('BINGE_PAYLOAD_TOO_LARGE', 'event 0 is 20000000 bytes as JSON, more than a mesh handoff carries')
    }
    const tooBig = (await forward('sink', events).catch((e: unknown) => e)) as OutputFailure
    expect(tooBig.permanent).toBe(true)
  })
})

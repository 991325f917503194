// The mqtt input and the broker outputs as config (docs/design.md §2): defaults, the
// `{{ }}` templates checked when the file is read, and every problem at its place.
import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/index.js'
import type { BingeError } from '../../src/errors.js'
import { subscriptionFilters } from '../../src/inputs/mqtt.js'

function problems(text: string): string[] {
  try {
    parseConfig(text, 'node.yaml', {})
  } catch (err) {
    return (((err as BingeError).details?.problems as Array<{ path: string; message: string }> | undefined) ?? []).map(
      (p) => `${p.path}: ${p.message}`,
    )
  }
  return []
}

describe('mqtt, nats and redis in the config', () => {
  it('gives the mqtt input a persistent session, QoS 1 and an ack window by default', () => {
    const config = parseConfig('inputs:\n  - mqtt: { url: "mqtt://b:1883", topics: ["s/#"] }\n', 'node.yaml', {})
    expect(config.inputs).toEqual([
      {
        mqtt: {
          url: 'mqtt://b:1883',
          topics: ['s/#'],
          qos: 1,
          clean: false,
          sessionExpiry: 7 * 86_400_000,
          inFlight: 256,
          connections: 1,
          format: 'json',
          keepalive: 30_000,
          reconnect: { min: 500, max: 30_000 },
        },
      },
    ])
  })

  it('shares the subscription between several connections', () => {
    expect(subscriptionFilters({ topics: ['a/#', '$share/g/b'], connections: 1 })).toEqual(['a/#', '$share/g/b'])
    expect(subscriptionFilters({ topics: ['a/#'], connections: 4 })).toEqual(['$share/binge/a/#'])
    expect(subscriptionFilters({ topics: ['a/#'], connections: 1, shareGroup: 'edge' })).toEqual(['$share/edge/a/#'])
  })

  it('reports every problem at its place, templates included', () => {
    const found = problems(
      [
        'inputs:',
        '  - mqtt: { url: "http://b", topics: [], qos: 3, inFlight: 0 }',
        'pipelines:',
        '  p:',
        '    outputs:',
        '      - mqtt: { url: "mqtt://b", topic: "out/{{ data.( }}" }',
        '      - nats: { url: "nats://n:4222", subject: "s", stram: X }',
        '      - redis: { url: "redis://r", stream: "s", waitAof: { local: 2 } }',
      ].join('\n'),
    )
    expect(found).toHaveLength(7)
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^inputs\[0\]\.mqtt\.url: expected mqtt:\/\/host:port/),
        expect.stringMatching(/^inputs\[0\]\.mqtt\.topics: expected at least one topic filter/),
        expect.stringMatching(/^inputs\[0\]\.mqtt\.qos: expected a whole number from 0 to 2, got 3/),
        expect.stringMatching(/^inputs\[0\]\.mqtt\.inFlight: expected a whole number/),
        expect.stringMatching(/^pipelines\.p\.outputs\[0\]\.mqtt\.topic: bad \{\{ \}\} placeholder/),
        expect.stringMatching(/^pipelines\.p\.outputs\[1\]\.nats\.stram: unknown key/),
        expect.stringMatching(/^pipelines\.p\.outputs\[2\]\.redis\.waitAof\.local: expected a whole number from 0 to 1/),
      ]),
    )
  })
})

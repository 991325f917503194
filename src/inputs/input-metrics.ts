// /metrics for inputs: connection state and payload counts, read from each input's
// status at scrape time (the inputs keep the counts; nothing is counted twice).
import { Counter, Gauge, type Registry } from 'prom-client'
import type { InputStatus } from './types.js'

export function registerInputMetrics(registry: Registry, statuses: () => InputStatus[]): void {
  new Gauge({
    name: 'binge_input_connected',
    help: 'Whether an input is connected and taking payloads (1) or not (0)',
    labelNames: ['input', 'kind'],
    registers: [registry],
    collect() {
      this.reset()
      for (const s of statuses()) this.set({ input: s.name, kind: s.kind }, s.state === 'connected' ? 1 : 0)
    },
  })
  new Counter({
    name: 'binge_input_payloads_total',
    help: 'Payloads an input received, by outcome: accepted (durable), deadlettered (can never parse), deferred (refused for now, redelivered)',
    labelNames: ['input', 'kind', 'outcome'],
    registers: [registry],
    collect() {
      this.reset()
      for (const s of statuses()) {
        const labels = { input: s.name, kind: s.kind }
        this.inc({ ...labels, outcome: 'received' }, s.counts.received)
        this.inc({ ...labels, outcome: 'deadlettered' }, s.counts.deadLettered)
        this.inc({ ...labels, outcome: 'deferred' }, s.counts.deferred)
      }
    },
  })
  new Counter({
    name: 'binge_input_events_accepted_total',
    help: 'Events an input handed to the queue (or a peer) durably',
    labelNames: ['input', 'kind'],
    registers: [registry],
    collect() {
      this.reset()
      for (const s of statuses()) this.inc({ input: s.name, kind: s.kind }, s.counts.accepted)
    },
  })
}

// The part of autocannon 8's programmatic API the benchmarks use (the package ships
// no types). Latencies are in milliseconds, durations in seconds.
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  namespace autocannon {
    interface Options {
      url: string
      connections?: number
      duration?: number
      /** Stop after this many requests instead of after `duration`. */
      amount?: number
      /** Run the load in this many worker threads (off the caller's event loop). */
      workers?: number
      method?: string
      headers?: Record<string, string>
      body?: string | Buffer
      pipelining?: number
      timeout?: number
      title?: string
    }

    interface Histogram {
      average: number
      mean: number
      stddev: number
      min: number
      max: number
      total: number
      p50: number
      p90: number
      p97_5: number
      p99: number
      p99_9: number
    }

    interface Result {
      title?: string
      url: string
      duration: number
      connections: number
      errors: number
      timeouts: number
      non2xx: number
      '2xx': number
      '4xx': number
      '5xx': number
      statusCodeStats: Record<string, { count: number }>
      latency: Histogram
      requests: Histogram & { sent: number }
      throughput: Histogram
    }

    interface Instance extends EventEmitter, PromiseLike<Result> {
      stop(): void
    }
  }

  function autocannon(options: autocannon.Options): autocannon.Instance
  export default autocannon
}

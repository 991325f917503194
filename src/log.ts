// Logs are JSON lines on stderr (stdout belongs to the stdout output and `binge run`),
// one sentence each; ERROR means data is at risk or an operator must act.
import { pino, type Logger } from 'pino'

export type { Logger }

export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 2, sync: true }))
}

export const silentLogger: Logger = pino({ level: 'silent' })

// Types of scripts/webhook-receiver.mjs for the TypeScript that imports it (the CLI's
// `binge webhook-receiver`, which the single executable runs for `mesh up`).
export interface Receiver {
  url: string
  close(): Promise<void>
}

export function startReceiver(options?: {
  listen?: string
  print?: (line: string) => void
  fail?: (path: string) => boolean
}): Promise<Receiver>

export function main(): Promise<void>

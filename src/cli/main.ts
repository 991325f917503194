#!/usr/bin/env node
// The `binge` command. Exit codes: 0 ok, 1 a runtime failure, 2 bad input or config
// (with the config path and every problem listed).
// Each command's module is imported when that command runs, so `binge status` never
// loads libp2p or LevelDB, and every command starts sooner (bench/startup.ts). The same
// file is the tsc build (dist/src/cli/main.js), the bundle (dist/binge.mjs) and the main
// script of the single executable (dist/binge), where it is CommonJS and its own binary.
import { isSea } from 'node:sea'
import { fileURLToPath } from 'node:url'
import { Command } from 'commander'
import { BingeError } from '../errors.js'
import type { MeshUpOptions } from './mesh-up.js'
import { defaultStatusUrl } from './status.js'

// libp2p and the test tooling need Node 22 or newer (docs/design.md §7): say so, not
// "Promise.withResolvers is not a function" from deep inside a start.
const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  process.stderr.write(
    `binge needs Node.js 22 or newer; this is ${process.version}. Use the single executable (npm run build:binary) or run it through npm, which puts Node 24 from node_modules/.bin first.\n`,
  )
  process.exit(1)
}

const program = new Command()
  .name('binge')
  .description('binary at the edge: a durable stream-processing node that meshes with its peers')
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))

program
  .command('start')
  .description('run one node until SIGTERM/SIGINT')
  .requiredOption('-c, --config <file>', 'the node config (YAML)')
  .action(async (opts: { config: string }) => {
    const { runStart } = await import('./start.js')
    process.exitCode = await runStart(opts.config)
  })

program
  .command('validate')
  .description('check a config file and list every problem with its place')
  .requiredOption('-c, --config <file>', 'the node config (YAML)')
  .action(async (opts: { config: string }) => {
    const { runValidate } = await import('./validate.js')
    process.exitCode = runValidate(opts.config)
  })

program
  .command('run')
  .description(
    'one-shot: run events through the pipelines in memory (no HTTP, no mesh) and print what each output received as JSON lines; exit 0 ok, 1 a pipeline failed, 2 bad input or config',
  )
  .requiredOption('-c, --config <file>', 'the node config (YAML)')
  .option('-p, --pipeline <name>', 'run only this pipeline (its when still applies)')
  .option('--dry-run', 'only print what the outputs would receive; send nothing')
  .argument('[event-file]', 'one JSON event, an array of them, or NDJSON lines; - or absent: stdin')
  .action(async (eventFile: string | undefined, opts: { config: string; pipeline?: string; dryRun?: boolean }) => {
    const { runOnce } = await import('./run.js')
    process.exitCode = await runOnce({ config: opts.config, pipeline: opts.pipeline, dryRun: opts.dryRun === true, input: eventFile })
  })

program
  .command('mesh')
  .description('run a local mesh')
  .command('up')
  .description('start every node config in DIR (default mesh-configs/) as local processes; Ctrl-C stops them all')
  .argument('[dir]', "a folder of node configs; NAME.env beside NAME.yaml sets that node's variables")
  .option(
    '--webhook-receiver [host:port]',
    'also run the example webhook receiver (default 127.0.0.1:9000) and set BINGE_WEBHOOK_URL to it',
  )
  .option('--json', "print the nodes' log lines as JSON, as they are")
  .option(
    '--mqtt <host:port>',
    'where to run mosquitto (when on the PATH and a node uses MQTT) and point BINGE_MQTT_URL; default 127.0.0.1:1884',
  )
  .action(async (dir: string | undefined, opts: { webhookReceiver?: string | true; json?: boolean; mqtt?: string }) => {
    // This file is the CLI (dist/src/cli/main.js, or the dist/binge.mjs bundle): the nodes
    // run it too. In the single executable the binary is the CLI.
    const options: MeshUpOptions = { json: opts.json === true }
    if (!isSea()) options.cli = fileURLToPath(import.meta.url)
    if (opts.webhookReceiver !== undefined)
      options.webhookReceiver = opts.webhookReceiver === true ? '127.0.0.1:9000' : opts.webhookReceiver
    if (opts.mqtt !== undefined) options.mqtt = opts.mqtt
    const { runMeshUp } = await import('./mesh-up.js')
    process.exitCode = await runMeshUp(dir, options)
  })

program
  .command('keygen')
  .description('print a fresh mesh key (64 hex digits) for mesh.psk: every node of a mesh shares it')
  .action(async () => {
    const { runKeygen } = await import('./keys.js')
    process.exitCode = runKeygen()
  })

program
  .command('id')
  .description("print the node's libp2p peer id (for other nodes' mesh.allowPeers); creates its identity key in dataDir if it has none")
  .requiredOption('-c, --config <file>', 'the node config (YAML)')
  .action(async (opts: { config: string }) => {
    const { runId } = await import('./keys.js')
    process.exitCode = await runId(opts.config)
  })

program
  .command('status')
  .description("a node's view of itself and the mesh, as a table")
  .option('-u, --url <url>', `the node's HTTP address (default: $BINGE_URL or ${defaultStatusUrl})`)
  .action(async (opts: { url?: string }) => {
    const { runStatus } = await import('./status.js')
    process.exitCode = await runStatus(opts.url)
  })

program
  .command('healthcheck')
  .description("exit 0 if the node's /healthz answers 200, else 1: a container health check that needs no curl")
  .option('-u, --url <url>', "the node's HTTP address (default: the port of $BINGE_HTTP_LISTEN on 127.0.0.1, else 8080)")
  .action(async (opts: { url?: string }) => {
    const listen = process.env.BINGE_HTTP_LISTEN ?? '127.0.0.1:8080'
    const base = opts.url ?? `http://127.0.0.1:${listen.slice(listen.lastIndexOf(':') + 1)}`
    const ok = await fetch(`${base.replace(/\/$/, '')}/healthz`, { signal: AbortSignal.timeout(3_000) }).then(
      (res) => res.status === 200,
      () => false,
    )
    process.exitCode = ok ? 0 : 1
  })

program
  .command('webhook-receiver')
  .description('run the example webhook receiver (scripts/webhook-receiver.mjs): it prints what arrives and lists it at GET /')
  .option('--listen <host:port>', 'where to listen (default: $WEBHOOK_LISTEN or 127.0.0.1:9000)')
  .action(async () => {
    const { main } = await import('../../scripts/webhook-receiver.mjs')
    await main()
  })

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof BingeError ? `${err.code}: ${err.message}` : String(err)
  process.stderr.write(`binge: ${message}\n`)
  process.exit(1)
})

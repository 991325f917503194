#!/usr/bin/env node
// The `binge` command. Exit codes: 0 ok, 1 a runtime failure, 2 bad input or config
// (with the config path and every problem listed).
import '../polyfill.js'
import { Command } from 'commander'
import { BingeError } from '../errors.js'
import { runMeshUp } from './mesh-up.js'
import { runStart } from './start.js'
import { runValidate } from './validate.js'

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
    process.exitCode = await runStart(opts.config)
  })

program
  .command('validate')
  .description('check a config file and list every problem with its place')
  .requiredOption('-c, --config <file>', 'the node config (YAML)')
  .action((opts: { config: string }) => {
    process.exitCode = runValidate(opts.config)
  })

program
  .command('mesh')
  .description('run a local mesh')
  .command('up')
  .description('start every node config in DIR (default mesh-configs/) as local processes; Ctrl-C stops them all')
  .argument('[dir]', 'a folder of node configs')
  .action(async (dir: string | undefined) => {
    process.exitCode = await runMeshUp(dir)
  })

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof BingeError ? `${err.code}: ${err.message}` : String(err)
  process.stderr.write(`binge: ${message}\n`)
  process.exit(1)
})

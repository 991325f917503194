// `binge start --config F`: run a node until SIGTERM/SIGINT, then stop it cleanly and
// exit 0. A second signal while stopping exits at once (the queue is crash-safe).
import { loadConfig } from '../config/index.js'
import { asError } from '../errors.js'
import { BingeNode } from '../node.js'
import { reportConfigError } from './validate.js'

export async function runStart(file: string): Promise<number> {
  let config
  try {
    config = loadConfig(file)
  } catch (err) {
    return reportConfigError(file, err)
  }
  const node = new BingeNode(config)
  let signalled = false
  const stopped = new Promise<void>((resolve, reject) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) {
        node.log.warn({ signal }, 'A second signal arrived while stopping, so the node exits now.')
        process.exit(1)
      }
      signalled = true
      node.log.info({ signal }, 'A stop signal arrived.')
      node.stop().then(resolve, reject)
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  })
  try {
    await node.start()
  } catch (err) {
    node.log.fatal({ err: asError(err).message }, 'The node could not start.')
    return 1
  }
  await stopped
  return 0
}

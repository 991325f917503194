// `binge keygen` and `binge id`: the two commands that make a closed mesh the easy one.
// keygen prints a fresh private-network key for `mesh.psk`; id prints the peer id a
// node has (creating its identity key in dataDir if it has none yet, so the id printed
// is the one it will join with) for other nodes' `mesh.allowPeers`.
import { randomBytes } from 'node:crypto'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadConfig } from '../config/index.js'
import { loadOrCreateIdentity } from '../mesh/identity.js'
import { reportConfigError } from './validate.js'

/** 32 random bytes as 64 hex digits: the form `mesh.psk` uses as is, without hashing. */
export function newMeshKey(): string {
  return randomBytes(32).toString('hex')
}

export function runKeygen(): number {
  process.stdout.write(`${newMeshKey()}\n`)
  return 0
}

export async function runId(file: string): Promise<number> {
  let config
  try {
    config = loadConfig(file)
  } catch (err) {
    return reportConfigError(file, err)
  }
  const key = await loadOrCreateIdentity(config.node.dataDir)
  process.stdout.write(`${peerIdFromPrivateKey(key).toString()}\n`)
  return 0
}

// The node's libp2p identity: an Ed25519 key kept in dataDir (mode 0600), created on
// first start and reused after, so a node keeps its peer id across restarts and its
// peers' allow-lists and handoff records stay valid.
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

export const keyFileName = 'peer-key'

export async function loadOrCreateIdentity(dataDir: string): Promise<PrivateKey> {
  const path = join(dataDir, keyFileName)
  try {
    const key = privateKeyFromProtobuf(await readFile(path))
    await chmod(path, 0o600)
    return key
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  await mkdir(dataDir, { recursive: true })
  const key = await generateKeyPair('Ed25519')
  // Write then rename: a crash mid-write must not leave a truncated key behind.
  const tmp = `${path}.tmp`
  await writeFile(tmp, privateKeyToProtobuf(key), { mode: 0o600 })
  await rename(tmp, path)
  return key
}

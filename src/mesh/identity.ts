// The node's libp2p identity: an Ed25519 key kept in dataDir (mode 0600), created on
// first start and reused after, so a node keeps its peer id across restarts and its
// peers' allow-lists and handoff records stay valid.
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { chmod, mkdir, open, readFile, rename } from 'node:fs/promises'
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
  // Write, fsync, then rename: neither a crash nor a power loss may leave a truncated
  // key behind (the node would refuse to start, or come back as another peer).
  const tmp = `${path}.tmp`
  const file = await open(tmp, 'w', 0o600)
  try {
    await file.chmod(0o600) // a tmp file left by an earlier crash keeps its old mode otherwise
    await file.writeFile(privateKeyToProtobuf(key))
    await file.sync()
  } finally {
    await file.close()
  }
  await rename(tmp, path)
  const dir = await open(dataDir, 'r')
  await dir
    .sync()
    .catch(() => {})
    .finally(() => dir.close())
  return key
}

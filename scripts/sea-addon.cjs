// LevelDB's native addon inside the single executable (dist/binge, built by
// scripts/build-binary.mjs): the binary carries classic-level.node as a SEA asset, and
// this module stands in for `node-gyp-build` in the bundle. A .node file must be a
// file to be loaded, so on first use it is written once to a cache directory named by
// its SHA-256 ($XDG_CACHE_HOME/binge/<sha256>/, else ~/.cache/binge/<sha256>/, else a
// per-user directory under the OS temp dir), then loaded with process.dlopen.
// Constraints: the file loaded is always the one the binary carries: an existing copy
// is hashed before use and replaced when it differs; a copy is written under a
// temporary name and renamed, so two binaries starting at once never load half a
// file; the directory is the user's own (0700), never one another user made.
'use strict'

const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

/** The asset's name and SHA-256, fixed at build time (scripts/build-binary.mjs defines them). */
const assetName = __BINGE_ADDON_ASSET__
const assetSha256 = __BINGE_ADDON_SHA256__

function sha256(bytes) {
  return crypto.createHash('sha256').update(bytes).digest('hex')
}

/** Candidate cache roots, most preferred first. */
function cacheRoots() {
  const roots = []
  if (process.env.XDG_CACHE_HOME) roots.push(path.join(process.env.XDG_CACHE_HOME, 'binge'))
  const home = os.homedir()
  if (home && home !== '/') roots.push(path.join(home, '.cache', 'binge'))
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user'
  roots.push(path.join(os.tmpdir(), `binge-${uid}`))
  return roots
}

/** `dir` made (0700) or already there, and ours: a directory another user made is refused. */
function ownDirectory(dir) {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  const stat = fs.lstatSync(dir)
  if (!stat.isDirectory()) throw new Error(`${dir} is not a directory`)
  if (typeof process.getuid === 'function' && stat.uid !== process.getuid()) throw new Error(`${dir} belongs to another user`)
}

/** The addon's path in `root`, written there first if missing or not the carried bytes. */
function extractTo(root, bytes) {
  const dir = path.join(root, assetSha256)
  ownDirectory(root)
  ownDirectory(dir)
  const file = path.join(dir, assetName)
  try {
    if (sha256(fs.readFileSync(file)) === assetSha256) return file
  } catch {
    // missing or unreadable: written below
  }
  const temp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`
  fs.writeFileSync(temp, bytes, { mode: 0o500 })
  fs.renameSync(temp, file)
  if (sha256(fs.readFileSync(file)) !== assetSha256) throw new Error(`${file} does not hold the bytes just written`)
  return file
}

let loaded

/** node-gyp-build's signature: `require('node-gyp-build')(dir)` returns the addon's exports. */
module.exports = function loadEmbeddedAddon() {
  if (loaded) return loaded
  const sea = require('node:sea')
  const bytes = Buffer.from(sea.getRawAsset(assetName))
  if (sha256(bytes) !== assetSha256)
    throw new Error(`the ${assetName} carried by this binary is damaged (SHA-256 differs from the build's)`)
  const problems = []
  for (const root of cacheRoots()) {
    let file
    try {
      file = extractTo(root, bytes)
    } catch (err) {
      problems.push(`${root}: ${err.message}`)
      continue
    }
    const addon = { exports: {} }
    process.dlopen(addon, file)
    loaded = addon.exports
    return loaded
  }
  throw new Error(`cannot write LevelDB's addon to a cache directory (set XDG_CACHE_HOME to a writable one): ${problems.join('; ')}`)
}

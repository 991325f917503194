// Bundles the CLI into one ESM file (dist/binge.mjs). Loading one file instead of
// hundreds of ESM modules starts a node faster and leaves it smaller (measured on the
// 2-core dev machine: idle RSS in a mesh 93 MiB vs 110 MiB). Minified, names kept (stack
// traces and logs still name functions and classes): V8 holds the whole source in
// memory, and a node with a mesh section idled at 94 MiB instead of 102 (Node 24,
// `npm run bench:startup`). classic-level stays external: it loads a native addon
// (the single executable, scripts/build-binary.mjs, carries it instead).
import { build } from 'esbuild'

await build({
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/binge.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  minify: true,
  keepNames: true,
  external: ['classic-level'],
  // Some bundled CommonJS dependencies call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __bingeRequire } from 'node:module'; const require = __bingeRequire(import.meta.url);" },
  logLevel: 'warning',
})

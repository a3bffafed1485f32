#!/usr/bin/env node
// The bundled build that ckpt runs from (bin/ckpt, the package's exports, the node
// agent, ckpt-self): a handful of files instead of tsc's ~75 modules, because Node's
// module loader (resolution, stat, open, compile per file) cost 80–140 ms of every
// CLI call before any work (issue #16). ESM with code splitting: code shared by the
// entry points lives in chunks/ (one copy per process, e.g. for a program that
// imports both 'ckpt' and 'ckpt/rank'), and each dynamic import() becomes a chunk
// loaded only when that path runs. Dependencies are bundled too.
// tsc's output (dist/…) stays for the tests and tools; the typings come from
// tsconfig.types.json (dist/types). No source maps: the package ships no sources.
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const { version } = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));
const outdir = `${root}dist/bundle`;

/**
 * One build per kind of process, each with its entry points (output name under
 * dist/bundle, without .js → source): a process loads its own build's files only.
 * Entry points loaded into one process share their chunks (the library's '.' and
 * './rank'; ckpt-self's two).
 */
const builds = [
  { index: 'src/index.ts', 'rank/index': 'src/rank/index.ts' }, // package.json exports '.' and './rank'
  { errors: 'src/errors.ts', 'process/self-program': 'src/process/self-program.ts' }, // scripts/ckpt-self.mjs
  { 'store/checksum': 'src/store/checksum.ts' }, // test/process/packed-install.test.ts: the installed package's checksums
];

rmSync(outdir, { recursive: true, force: true });
const define = { __CKPT_BUNDLE__: 'true', __CKPT_VERSION__: JSON.stringify(version) };
/** What every build shares. Whitespace and syntax only: names stay readable in CKPT_DEBUG stack traces. */
const common = {
  absWorkingDir: root,
  outdir,
  bundle: true,
  platform: 'node',
  target: 'node20',
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  sourcemap: false,
  logLevel: 'warning',
  metafile: true,
};
// One after another: builds may write the same chunk (a dependency), with the same bytes.
const results = [];
for (const entryPoints of builds) {
  results.push(await build({ ...common, entryPoints, entryNames: '[dir]/[name]', chunkNames: 'chunks/[name]-[hash]', splitting: true, format: 'esm', define }));
}
// The CLI (bin/ckpt) and the node agent (srun runs it on every node: runtime/
// starter-slurm.ts) are one CommonJS file each: Node's CommonJS loader compiles one file
// with no resolution, while ESM resolves, stats and links every chunk — measured
// here, a tiny `ckpt checkpoint --pid` spent ~30 ms less CPU (issue #16). esbuild's
// lazy module wrappers keep a command's code from running until it is imported, as
// the chunks did. import.meta.url becomes this file's URL.
for (const entryPoints of [{ 'cli/main': 'src/cli/main.ts' }, { 'agent/main': 'src/agent/main.ts' }]) {
  results.push(
    await build({
      ...common,
      entryPoints,
      outExtension: { '.js': '.cjs' },
      splitting: false,
      format: 'cjs',
      banner: { js: 'const __ckptModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
      define: { ...define, 'import.meta.url': '__ckptModuleUrl' },
    }),
  );
}
if (process.argv.includes('--verbose')) {
  for (const [file, out] of results.flatMap((r) => Object.entries(r.metafile.outputs))) console.log(`${String(out.bytes).padStart(8)}  ${file}`);
}

// checkpoint() never saves nothing silently: without a usable checkpointer it fails
// with a coded error naming what is missing, and leaves no snapshot directory; `none`
// is used only when asked for by name. The native addon is disabled (CKPT_NO_NATIVE=1)
// so that CRIU is unusable here even as root, as on a machine without a C compiler.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ckpt, root, tempDir } from '../helpers.js';

const api = pathToFileURL(join(root, 'dist', 'index.js')).href;

/** A program that calls checkpoint() once and prints what came of it as JSON. */
function program(dir: string, body: string): string {
  const file = join(dir, 'prog.mjs');
  writeFileSync(
    file,
    `import * as ckpt from ${JSON.stringify(api)};
     const store = process.argv[2];
     try {
       ${body}
     } catch (err) {
       console.log(JSON.stringify({ error: { code: err.code, message: err.message, hint: err.hint } }));
     }`,
  );
  return file;
}

function run(file: string, store: string, env: NodeJS.ProcessEnv = {}): Promise<{ out: any; stderr: string }> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [file, store], { env: { ...process.env, CKPT_NO_NATIVE: '1', CKPT_CRS: '', ...env } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}: ${stderr}`));
      else resolve({ out: JSON.parse(stdout.trim().split('\n').at(-1)!), stderr });
    }),
  );
}

test('without a usable checkpointer, checkpoint() fails with a coded error and leaves no snapshot', async (t) => {
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const file = program(dir, `const r = await ckpt.checkpoint({ dir: store }); console.log(JSON.stringify({ state: r.state, crs: r.crs }));`);
  const { out } = await run(file, store);
  assert.ok(out.error, `checkpoint() succeeded: ${JSON.stringify(out)}`);
  assert.equal(out.error.code, 'ECKPT_CRS_UNAVAILABLE');
  // It names what is missing (criu: the addon; self: the callbacks) and how to get it.
  assert.match(out.error.message, /criu: the native addon is disabled/);
  assert.match(out.error.message, /self: the program registered no save\(\)\/load\(\) callbacks \(registerSelf\)/);
  assert.doesNotMatch(out.error.message, /none:/);
  assert.match(out.error.hint, /registerSelf\(\{ save, load \}\)/);
  assert.match(out.error.hint, /ckpt doctor/);
  assert.equal(existsSync(store), false, 'no store or snapshot directory is left');
  assert.deepEqual(readdirSync(dir), ['prog.mjs']);
});

test('the automatic choice is self when callbacks are registered; none only by name', async (t) => {
  const dir = tempDir(t);
  const selfStore = join(dir, 'self');
  const selfProg = program(dir, `ckpt.registerSelf({ save: () => ({ n: 1 }), load: () => {} });
    const r = await ckpt.checkpoint({ dir: store }); console.log(JSON.stringify({ state: r.state, crs: r.crs, seq: r.snapshot.seq }));`);
  assert.deepEqual((await run(selfProg, selfStore)).out, { state: 'continue', crs: 'self', seq: 1 });
  assert.deepEqual(readdirSync(join(selfStore, '000001')).sort(), ['manifest.json', 'state.json']);

  const noneStore = join(dir, 'none');
  const noneProg = program(dir, `const r = await ckpt.checkpoint({ dir: store, crs: 'none' }); console.log(JSON.stringify({ state: r.state, crs: r.crs }));`);
  assert.deepEqual((await run(noneProg, noneStore)).out, { state: 'continue', crs: 'none' });
  // CKPT_CRS=none names it too.
  const envProg = program(dir, `const r = await ckpt.checkpoint({ dir: store }); console.log(JSON.stringify({ state: r.state, crs: r.crs }));`);
  assert.deepEqual((await run(envProg, join(dir, 'env'), { CKPT_CRS: 'none' })).out, { state: 'continue', crs: 'none' });
});

test('ckpt doctor says the addon is missing, what is lost and what to run', async () => {
  const r = await ckpt(['doctor'], { CKPT_NO_NATIVE: '1' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^criu\s+unavailable: the native addon is disabled/m);
  assert.match(r.stdout, /^native addon: unavailable: .*; checksums: WebAssembly XXH64 \(same digests\)$/m);
  assert.match(r.stdout, /no CRIU checkpointer .*self and none work/);
  assert.match(r.stdout, /^automatic choice: self when the program registers save\(\)\/load\(\); without them checkpoint\(\) fails \(none: only by name\)$/m);
  const j = JSON.parse((await ckpt(['doctor', '--json'], { CKPT_NO_NATIVE: '1' })).stdout);
  assert.equal(j.native.ok, false);
  assert.equal(j.native.checksums, 'wasm');
  assert.equal(j.automatic, null);
});

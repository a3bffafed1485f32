// XXH64 of a file as it grows (the commit overlapped with CRIU's dump): advanced in
// steps of any size, then finished, it is the whole file's digest, native and WebAssembly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checksumBackend, hashFile, streamHash } from '../../dist/store/checksum.js';
import { root, tempDir } from '../helpers.js';

const chunk = (n: number, seed: number): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed + (i >> 9)) & 255;
  return b;
};

test('streamHash advanced while the file grows, then finished, gives hashFile\'s digest (native)', async (t) => {
  assert.equal(checksumBackend().backend, 'native');
  const file = join(tempDir(t), 'pages-1.img');
  writeFileSync(file, '');
  const fd = openSync(file, 'r');
  t.after(() => closeSync(fd));
  const h = streamHash();
  for (const [i, n] of [5, 33, 4 << 20, 1, (4 << 20) + 3, 100].entries()) {
    appendFileSync(file, chunk(n, i));
    await h.advance(fd, Number.MAX_SAFE_INTEGER, i % 2 === 0);
    assert.equal(h.hashed % 32, 0, 'whole stripes only until finish');
  }
  assert.deepEqual(await h.finish(fd), { xxh64: await hashFile(file), size: (8 << 20) + 5 + 33 + 1 + 3 + 100 });
});

test('CKPT_NO_NATIVE=1: the WebAssembly stream gives the same digest', async (t) => {
  const file = join(tempDir(t), 'pages-2.img');
  writeFileSync(file, Buffer.concat([chunk(3 << 20, 1), chunk(77, 2)]));
  const expected = await hashFile(file);
  const mod = pathToFileURL(join(root, 'dist', 'store', 'checksum.js')).href;
  const script = `import { streamHash, checksumBackend } from ${JSON.stringify(mod)};
import { openSync } from 'node:fs';
const fd = openSync(process.argv[1], 'r');
const h = streamHash();
await h.advance(fd, 1000001, false);
await h.advance(fd, 2500000, true);
console.log(JSON.stringify({ backend: checksumBackend().backend, ...(await h.finish(fd)) }));`;
  const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script, file], { env: { ...process.env, CKPT_NO_NATIVE: '1' }, encoding: 'utf8' }));
  assert.deepEqual(out, { backend: 'wasm', xxh64: expected, size: (3 << 20) + 77 });
});

// The native XXH64 against an independent implementation (xxhash-wasm), on buffers
// and files of sizes around every boundary of the algorithm and of the read chunk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import xxhash from 'xxhash-wasm';
import { hashFile } from '../../dist/store/checksum.js';
import { tempDir } from '../helpers.js';

test('xxh64 of files matches an independent implementation', async (t) => {
  const { h64Raw } = await xxhash();
  const dir = tempDir(t);
  const chunk = 4 << 20;
  for (const n of [0, 1, 3, 4, 7, 8, 15, 31, 32, 33, 63, 64, 100, 4096, chunk - 1, chunk, chunk + 17, 2 * chunk + 5]) {
    const data = Buffer.alloc(n);
    for (let i = 0; i < n; i++) data[i] = (i * 131 + 7) & 255;
    const file = join(dir, `f${n}`);
    writeFileSync(file, data);
    assert.equal(await hashFile(file), h64Raw(data).toString(16).padStart(16, '0'), `size ${n}`);
  }
});

test('sha256 entries are still computed for older manifests', async (t) => {
  const file = join(tempDir(t), 'x');
  writeFileSync(file, 'abc');
  assert.equal(await hashFile(file, 'sha256'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

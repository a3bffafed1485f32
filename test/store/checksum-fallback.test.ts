// The WebAssembly XXH64 (used when the native addon is not built) against the native
// addon: identical digests on files and buffers of sizes around every boundary of
// the algorithm and of both read chunks; and a process with CKPT_NO_NATIVE=1 uses it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checksumBackend, hashBytes, hashFile, nativeXxh64, wasmXxh64 } from '../../dist/store/checksum.js';
import { root, tempDir } from '../helpers.js';

const sizes = [0, 1, 3, 4, 7, 8, 15, 31, 32, 33, 63, 64, 100, 4096, (1 << 20) - 1, 1 << 20, (1 << 20) + 31, (4 << 20) + 17, (9 << 20) + 5];

function bytes(n: number): Buffer {
  const data = Buffer.alloc(n);
  for (let i = 0; i < n; i++) data[i] = (i * 131 + 7 + (i >> 9)) & 255;
  return data;
}

test('the WebAssembly fallback gives the native addon\'s digests, on files and on bytes', async (t) => {
  assert.equal(checksumBackend().backend, 'native', 'the addon is built in this checkout');
  const dir = tempDir(t);
  for (const n of sizes) {
    const data = bytes(n);
    const file = join(dir, `f${n}`);
    writeFileSync(file, data);
    const native = await nativeXxh64(file);
    assert.match(native, /^[0-9a-f]{16}$/);
    assert.equal(await wasmXxh64(file), native, `file of ${n} bytes`);
    assert.equal(await wasmXxh64(data), native, `${n} bytes in memory`);
    assert.equal(await nativeXxh64(data), native);
    // Bytes up to 1 MiB are hashed on the calling thread (xxh64Sync), larger ones in the pool: the same digest.
    assert.equal(await hashBytes(data), native, `hashBytes of ${n} bytes`);
  }
});

test('CKPT_NO_NATIVE=1: checksums come from WebAssembly, equal to the native ones', async (t) => {
  const dir = tempDir(t);
  const files = sizes.map((n) => {
    const file = join(dir, `f${n}`);
    writeFileSync(file, bytes(n));
    return file;
  });
  const url = pathToFileURL(join(root, 'dist', 'store', 'checksum.js')).href;
  const script = `const m = await import(${JSON.stringify(url)});
    const files = JSON.parse(process.argv[1]);
    const sums = []; for (const f of files) sums.push(await m.hashFile(f));
    console.log(JSON.stringify({ backend: m.checksumBackend(), sums }));`;
  const out = JSON.parse(
    execFileSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(files)], { env: { ...process.env, CKPT_NO_NATIVE: '1' }, encoding: 'utf8' }),
  );
  assert.equal(out.backend.backend, 'wasm');
  assert.match(out.backend.reason, /CKPT_NO_NATIVE/);
  const native: string[] = [];
  for (const f of files) native.push(await hashFile(f));
  assert.deepEqual(out.sums, native);
});

#!/usr/bin/env node
// Checksum throughput: XXH64 from the native addon (libuv's thread pool) against the
// WebAssembly fallback used when the addon is not built (xxhash-wasm, on the main
// thread), with SHA-256 (node:crypto) as the baseline, on the same file held in the
// page cache — what a snapshot's commit costs per byte — and on bytes in memory (a
// rank's inline state). The two XXH64 digests must be equal (checked every time).
//
//   node bench/checksum.mjs [--mb 256] [--reps 5] [--json]
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { checksumBackend, nativeXxh64, wasmXxh64 } from '../dist/store/checksum.js';

const { values } = parseArgs({ options: { mb: { type: 'string', default: '256' }, reps: { type: 'string', default: '5' }, json: { type: 'boolean', default: false } } });
const mb = Number(values.mb);
const reps = Number(values.reps);
if (!(mb > 0) || !(reps > 0)) throw new Error('--mb and --reps take positive numbers');
if (checksumBackend().backend !== 'native') {
  console.error(`bench/checksum: the native addon is not loaded (${checksumBackend().reason}): build it first (npm install)`);
  process.exit(1);
}
const out = values.json ? (s) => process.stderr.write(`${s}\n`) : (s) => process.stdout.write(`${s}\n`);

const dir = mkdtempSync(join(tmpdir(), 'ckpt-bench-checksum-'));
const cleanup = () => rmSync(dir, { recursive: true, force: true });
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

// Incompressible data (xorshift), written once and read back once to be in the page cache.
const data = Buffer.allocUnsafe(mb << 20);
let x = 0x9e3779b9;
for (let i = 0; i < data.length; i += 4) {
  x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
  data.writeUInt32LE(x >>> 0, i);
}
const file = join(dir, 'data');
writeFileSync(file, data);
readFileSync(file);

async function sha256File(path) {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c);
  return h.digest('hex');
}

const cases = {
  'file: native xxh64': () => nativeXxh64(file),
  'file: wasm xxh64': () => wasmXxh64(file),
  'file: sha256 (baseline)': () => sha256File(file),
  'memory: native xxh64': () => nativeXxh64(data),
  'memory: wasm xxh64': () => wasmXxh64(data),
  'memory: sha256 (baseline)': async () => createHash('sha256').update(data).digest('hex'),
};
const results = {};
const digests = {};
for (const name of Object.keys(cases)) results[name] = [];
await cases['file: wasm xxh64'](); // instantiate the module outside the timings
for (let r = 0; r < reps; r++) {
  // Alternate the order: neither side always runs on a warmer cache or a quieter machine.
  const names = Object.keys(cases);
  if (r % 2) names.reverse();
  for (const name of names) {
    const t0 = process.hrtime.bigint();
    const d = await cases[name]();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    results[name].push(s);
    digests[name] = d;
  }
  for (const k of ['file', 'memory']) {
    if (digests[`${k}: native xxh64`] !== digests[`${k}: wasm xxh64`]) throw new Error(`${k}: the native and wasm digests differ`);
  }
}
const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
const gbps = (s) => (mb * 1048576) / s / 1e9;
out(`checksum throughput: ${mb} MiB, ${reps} repetitions (median), ${cpus().length} CPUs, load ${loadavg()[0].toFixed(2)}, Node ${process.version}`);
out('| case | median s | GB/s | × sha256 |');
out('|---|---|---|---|');
for (const name of Object.keys(cases)) {
  const base = median(results[`${name.split(':')[0]}: sha256 (baseline)`]);
  out(`| ${name} | ${median(results[name]).toFixed(3)} | ${gbps(median(results[name])).toFixed(2)} | ${(base / median(results[name])).toFixed(2)} |`);
}
out(`wasm / native: file ${(median(results['file: native xxh64']) / median(results['file: wasm xxh64'])).toFixed(2)}, memory ${(median(results['memory: native xxh64']) / median(results['memory: wasm xxh64'])).toFixed(2)} (of native's throughput); digests equal`);
if (values.json) process.stdout.write(`${JSON.stringify({ mb, reps, seconds: results }, null, 2)}\n`);

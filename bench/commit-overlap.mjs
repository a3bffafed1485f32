#!/usr/bin/env node
// The durable commit overlapped with CRIU's dump (issue #16), on and off, in one run:
//   node bench/commit-overlap.mjs [--sizes 200,1024] [--reps N] [--json]
// Per size and repetition, interleaved (the order alternates): a C process holding N MB
// of non-zero memory is checkpointed with checkpointProcess(then: 'terminate') once
// with CKPT_COMMIT_OVERLAP=1 (page images hashed and written back while CRIU writes
// them) and once with 0 (all of it after the dump). Reported: the whole call, and the
// commit alone (from 'committing the snapshot' to the end), medians, and on/off ratios.
// Needs root, a working CRIU and dist/. Not a test: figures depend on the machine.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const SIZES = (arg('--sizes') ?? '200,1024').split(',').map(Number);
const REPS = Number(arg('--reps') ?? 5);
const JSON_OUT = process.argv.includes('--json');
if (process.geteuid?.() !== 0) {
  console.error('bench/commit-overlap.mjs: CRIU needs root');
  process.exit(2);
}
const { checkpointProcess } = await import('../dist/index.js');

const WORK = mkdtempSync(join(tmpdir(), 'ckpt-bench-overlap-'));
const live = new Set();
function cleanup() {
  for (const pid of live) if (pid > 1) try { process.kill(-pid, 'SIGKILL'); } catch {}
  rmSync(WORK, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

// The target of bench/criu.mjs: every page dirty, non-zero, incompressible.
const TARGET_C = String.raw`
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
  size_t n = (size_t)strtoull(argv[1], 0, 10) << 20;
  uint64_t *p = malloc(n), x = 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid(), sum = 0;
  if (!p) return 3;
  for (size_t i = 0; i < n / 8; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; p[i] = x; sum += x; }
  int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || write(fd, "ready\n", 6) != 6) return 4;
  close(fd);
  for (;;) { sleep(1); sum += p[(sum >> 3) % (n / 8)]; }
}
`;
writeFileSync(join(WORK, 'memhog.c'), TARGET_C);
const TARGET = join(WORK, 'memhog');
const cc = spawnSync('gcc', ['-O2', '-o', TARGET, join(WORK, 'memhog.c')], { encoding: 'utf8' });
if (cc.status !== 0) throw new Error(`gcc: ${cc.stderr}`);

async function startTarget(mb) {
  const ready = join(WORK, `ready-${Date.now()}`);
  const child = spawn(TARGET, [String(mb), ready], { stdio: 'ignore', detached: true });
  const exited = new Promise((res) => child.once('exit', res));
  if (!(child.pid > 1)) throw new Error('no target');
  live.add(child.pid);
  while (!(existsSync(ready) && readFileSync(ready, 'utf8') === 'ready\n')) {
    if (child.exitCode !== null) throw new Error('target exited');
    await sleep(5);
  }
  return { pid: child.pid, gone: async () => { await exited; live.delete(child.pid); } };
}

async function once(mb, overlap) {
  const target = await startTarget(mb);
  const store = join(WORK, `store-${overlap}`);
  process.env.CKPT_COMMIT_OVERLAP = overlap ? '1' : '0';
  let commitAt;
  const t0 = performance.now();
  await checkpointProcess({ pid: target.pid, dir: store, then: 'terminate', onProgress: (m) => { if (m === 'committing the snapshot') commitAt = performance.now(); } });
  const end = performance.now();
  await target.gone();
  rmSync(store, { recursive: true, force: true });
  return { total: end - t0, commit: commitAt === undefined ? NaN : end - commitAt };
}

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const results = [];
for (const mb of SIZES) {
  const runs = { on: [], off: [] };
  await once(Math.min(mb, 50), true); // warm-up: CRIU, the addon, the page cache's first growth
  for (let r = 0; r < REPS; r++) {
    for (const mode of r % 2 ? ['off', 'on'] : ['on', 'off']) runs[mode].push(await once(mb, mode === 'on'));
  }
  const row = { mb, reps: REPS };
  for (const mode of ['on', 'off']) {
    row[`${mode}TotalMs`] = Math.round(median(runs[mode].map((x) => x.total)));
    row[`${mode}CommitMs`] = Math.round(median(runs[mode].map((x) => x.commit)));
  }
  row.totalRatio = +(row.onTotalMs / row.offTotalMs).toFixed(2);
  row.commitRatio = +(row.onCommitMs / row.offCommitMs).toFixed(2);
  results.push(row);
  if (!JSON_OUT) console.log(`${mb} MB: checkpoint on ${row.onTotalMs} / off ${row.offTotalMs} ms (×${row.totalRatio}); commit on ${row.onCommitMs} / off ${row.offCommitMs} ms (×${row.commitRatio})`);
}
if (JSON_OUT) console.log(JSON.stringify(results, null, 2));

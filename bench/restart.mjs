// Restart overlapped with verification (issue #16), in one run, interleaved:
//
//   A. restartSnapshot() of a CRIU process snapshot (~0.1 MB and ~1 GB touched), with
//      its checksums verified (during the restore: the tree is held at CRIU's
//      post-restore until they matched) and with verification skipped (verify: false).
//      Timed until restartSnapshot() returns: the process runs again. Goal: verified
//      ≤ skipped + 5 %.
//   B. restart of a 4-rank job (bench/fixtures/ring.mjs) checkpointed by self and by
//      criu, each from its own snapshot: from restartSnapshot() until every rank has
//      received its first message sent after the restart. Goal: self ≤ criu.
//
// Needs root and CRIU (A, and criu in B). The library is timed (the CLI's own start
// is the same for both sides of each ratio).
//
//   node bench/restart.mjs [--sizes 0.1,1024] [--reps N] [--ranks N] [--only process|jobs]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkpointProcess } from '../dist/process/external.js';
import { restartSnapshot } from '../dist/process/restart.js';
import { launchJob } from '../dist/runtime/launcher.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '0.1,1024' },
    reps: { type: 'string', default: '7' },
    ranks: { type: 'string', default: '4' },
    only: { type: 'string' },
  },
});
const REPS = Number(values.reps);
const RANKS = Number(values.ranks);
const here = dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'ckpt-bench-restart-'));
const log = (s) => process.stdout.write(`${s}\n`);
const median = (xs) => {
  const a = [...xs].sort((x, y) => x - y);
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
};
const fmt = (x) => x.toFixed(1);
const withTimeout = (p, ms, what) => {
  let timer;
  return Promise.race([p, new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out waiting for ${what}`)), ms)))]).finally(() => clearTimeout(timer));
};

// ---- A: one process ------------------------------------------------------------------

const TOUCH_C = `
#include <stdlib.h>
#include <string.h>
#include <time.h>
int main(int argc, char **argv) {
  size_t n = (size_t)(atof(argv[1]) * 1024 * 1024);
  char *p = malloc(n + 1);
  for (size_t i = 0; i < n; i++) p[i] = (char)(i * 131 + 7);
  struct timespec pause = {0, 10 * 1000 * 1000};
  for (;;) { p[n] ^= 1; nanosleep(&pause, 0); }
}`;

async function processSnapshot(mb) {
  const src = join(work, 'touch.c');
  const exe = join(work, 'touch');
  writeFileSync(src, TOUCH_C);
  execFileSync('gcc', ['-O2', '-o', exe, src]);
  const child = spawn(exe, [String(mb)], { stdio: 'ignore', detached: true });
  const exited = new Promise((r) => child.once('exit', r));
  // Until its memory is touched: its RSS reaches the size.
  for (let i = 0; i < 600; i++) {
    const rss = Number(/VmRSS:\s+(\d+)/.exec(execFileSync('cat', [`/proc/${child.pid}/status`]).toString())?.[1] ?? 0) / 1024;
    if (rss >= mb * 0.95) break;
    await sleep(50);
  }
  const dir = join(work, `proc-${mb}`);
  await checkpointProcess({ pid: child.pid, dir, then: 'terminate' });
  await exited;
  return dir;
}

/** One restart: restartSnapshot() until it returns (the process runs); then it is killed and reaped. */
async function restartOnce(store, verify) {
  const t0 = performance.now();
  const r = await restartSnapshot(store, { verify });
  const ms = performance.now() - t0;
  process.kill(r.process.pid, 'SIGKILL');
  await r.process.wait();
  return ms;
}

async function benchProcess(mb) {
  const store = await processSnapshot(mb);
  const times = { verified: [], skipped: [] };
  await restartOnce(store, true); // warm-up: page cache, the addon, CRIU's binary
  for (let rep = 0; rep < REPS; rep++) {
    const order = rep % 2 ? ['skipped', 'verified'] : ['verified', 'skipped'];
    for (const k of order) times[k].push(await restartOnce(store, k === 'verified'));
  }
  const v = median(times.verified);
  const s = median(times.skipped);
  const range = (xs) => `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}`;
  const minRatio = Math.min(...times.verified) / Math.min(...times.skipped);
  log(`| ${mb} MB | ${fmt(v)} | ${fmt(s)} | ${(v / s).toFixed(3)} | ${minRatio.toFixed(3)} | ${range(times.verified)} | ${range(times.skipped)} |`);
  rmSync(store, { recursive: true, force: true });
}

// ---- B: a 4-rank job, self vs criu ---------------------------------------------------------

/** Sinks for a restarted job's output (prefix mode): resolves when every rank received a post-restart message. */
const phases = [];
function firstMessages(n) {
  const seen = new Set();
  let resolve;
  const all = new Promise((r) => (resolve = r));
  let rest = '';
  const stderr = new Writable({
    write(chunk, _e, done) {
      const parts = (rest + chunk.toString()).split('\n');
      rest = parts.pop();
      for (const l of parts) {
        const m = /^\[(\d+)\] BENCH (.*)$/.exec(l);
        const rec = m && JSON.parse(m[2]);
        if (rec?.k === 'first-recv') seen.add(Number(m[1]));
        if (rec?.k === 'start' && process.env.BENCH_PHASES) phases.push({ rank: Number(m[1]), ...rec });
      }
      if (seen.size === n) resolve();
      done();
    },
  });
  const stdout = new Writable({ write: (_c, _e, done) => done() });
  return { output: { mode: 'prefix', stdout, stderr }, all };
}

async function jobSnapshot(crs) {
  const store = join(work, `job-${crs}`);
  const job = await launchJob({
    command: process.execPath,
    args: [join(here, 'fixtures', 'ring.mjs')],
    size: RANKS,
    name: `bench-restart-${process.pid}-${crs}`,
    output: { mode: 'events' },
    env: { BENCH_THINK_MS: '1', BENCH_STATE_BYTES: '1024' },
    store,
    register: false,
    crs,
  });
  if (!job.isReady) await withTimeout(new Promise((r) => job.once('ready', r)), 30_000, 'the job to start');
  await sleep(300);
  await job.checkpoint({ crs, then: 'terminate' });
  await job.wait();
  return store;
}

async function jobRestartOnce(store) {
  const sinks = firstMessages(RANKS);
  phases.length = 0;
  const t0 = performance.now();
  const e0 = performance.timeOrigin + t0;
  const r = await restartSnapshot(store, { job: { output: sinks.output, register: false } });
  const returned = performance.now() - t0;
  try {
    await withTimeout(sinks.all, 30_000, 'every rank to exchange after the restart');
    if (process.env.BENCH_PHASES) for (const p of phases) log(`  rank ${p.rank}: started +${fmt(p.origin - e0)} imported +${fmt(p.imported - e0)} joined +${fmt(p.joined - e0)} all +${fmt(performance.now() - t0)}`);
    return { returned, all: performance.now() - t0 };
  } finally {
    r.process.job.kill('ended by bench/restart.mjs');
    await r.process.job.wait();
  }
}

async function benchJobs() {
  const stores = { self: await jobSnapshot('self'), criu: await jobSnapshot('criu') };
  const times = { self: [], criu: [] };
  for (const k of ['self', 'criu']) await jobRestartOnce(stores[k]); // warm-up
  for (let rep = 0; rep < REPS; rep++) {
    const order = rep % 2 ? ['criu', 'self'] : ['self', 'criu'];
    for (const k of order) times[k].push(await jobRestartOnce(stores[k]));
  }
  const row = (k) => `| ${k} | ${fmt(median(times[k].map((t) => t.returned)))} | ${fmt(median(times[k].map((t) => t.all)))} |`;
  log(`\nB. ${RANKS}-rank ring job restart, medians of ${REPS} (ms from restartSnapshot()):\n`);
  log('| crs | returned | every rank exchanged |\n|---|---|---|');
  log(row('self'));
  log(row('criu'));
  const ratio = median(times.self.map((t) => t.all)) / median(times.criu.map((t) => t.all));
  log(`\nself / criu (every rank exchanged): ${ratio.toFixed(3)} (goal ≤ 1)`);
}

try {
  if (values.only !== 'jobs') {
    log(`A. restartSnapshot() of a CRIU process snapshot, medians of ${REPS} (ms, until it returns):\n`);
    log('| touched | verified (overlapped) | verify skipped | ratio of medians | ratio of minima | verified min–max | skipped min–max |\n|---|---|---|---|---|---|---|');
    for (const mb of values.sizes.split(',').map(Number)) await benchProcess(mb);
    log('\ngoal: ratio ≤ 1.05');
  }
  if (values.only !== 'process') await benchJobs();
} finally {
  rmSync(work, { recursive: true, force: true });
}

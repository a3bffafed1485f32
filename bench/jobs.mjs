#!/usr/bin/env node
// Job checkpoint benchmark: global checkpoint latency of an N-rank job with a small
// state, for N = 1, 2, 4, 8, 16, and restart time.
//   node bench/jobs.mjs [--ranks 1,2,4,8,16] [--reps N] [--restarts N] [--crs self,criu]
//                       [--criu-reps N] [--think-ms MS] [--state-bytes B] [--store-dir DIR] [--json]
// Not a test: figures depend on the machine (and 16 ranks share its cores).
// Goals (issue 4): coordination overhead (total − slowest local snapshot) ≤ 10 ms
// at N = 16, growing no faster than N.
//
// The job runs bench/fixtures/ring.mjs: each rank calls comm.safePoint() at the top
// of every iteration, sends a small message to its right neighbour, receives one
// from its left, and idles --think-ms (default 1). Its state (~1 KiB of JSON) is
// saved with registerSelf({ save, load }). Per N and repetition:
//   checkpoint  job.checkpoint() (then: continue), timed in this process (total);
//               the ranks timestamp their stop, save and resume (see the fixture)
//               and print them on stderr, which the launcher's 'output' events bring.
//   restart     after a final checkpoint with then: 'terminate', restartSnapshot()
//               of the store (checksums verified, as `ckpt restart` does) until the
//               first message received by a restarted rank; the restarted job is
//               then killed and the same snapshot restarted again.
// Timestamps of all processes are performance.timeOrigin + performance.now(), on
// the same machine clock. Figures are medians over the repetitions. The snapshots go
// to a temporary directory under --store-dir (default the OS temp dir, here on disk);
// as a baseline for the commit, the run also times one fsynced 1 KiB file plus the
// fsync of its directory there (what a durable commit costs at the least).
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { launchJob } from '../dist/runtime/launcher.js';
import { restartSnapshot } from '../dist/process/restart.js';

// ---- arguments ---------------------------------------------------------------------

function argValue(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}
/** Bad arguments: one line and exit status 2, no stack trace. */
function usage(message) {
  console.error(`bench/jobs.mjs: ${message}`);
  process.exit(2);
}
function intList(name, fallback) {
  return (argValue(name) ?? fallback).split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1 || n > 256) usage(`${name}: '${s}' is not a rank count (1–256)`);
    return n;
  });
}
function positive(name, fallback, { zero = false } = {}) {
  const v = argValue(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || (!zero && n === 0)) usage(`${name}: '${v}' is not a ${zero ? 'non-negative' : 'positive'} number`);
  return n;
}
const RANKS = intList('--ranks', '1,2,4,8,16');
const REPS = positive('--reps', 21);
const CRIU_REPS = positive('--criu-reps', 3);
const RESTARTS = positive('--restarts', 5, { zero: true });
const THINK_MS = positive('--think-ms', 1, { zero: true });
const STATE_BYTES = positive('--state-bytes', 1024, { zero: true });
const CRS = (argValue('--crs') ?? 'self,criu').split(',');
for (const c of CRS) if (c !== 'self' && c !== 'criu') usage(`--crs: 'self' or 'criu', not '${c}'`);
const STORE_DIR = argValue('--store-dir') ?? tmpdir();
const JSON_OUT = process.argv.includes('--json');
const log = JSON_OUT ? (...a) => console.error(...a) : (...a) => console.log(...a);

const here = dirname(fileURLToPath(import.meta.url));
const PROGRAM = join(here, 'fixtures', 'ring.mjs');
const now = () => performance.timeOrigin + performance.now();
/** Checkpoints (after warm-up) and warm-ups per N: a criu checkpoint takes seconds, a self one milliseconds. */
const repsFor = (crs) => (crs === 'self' ? REPS : Math.min(REPS, CRIU_REPS));
const warmupFor = (crs) => (crs === 'self' ? 2 : 0);
const restartsFor = (crs) => (crs === 'self' ? RESTARTS : Math.min(RESTARTS, 2));
const WAIT_MS = 30_000;

// ---- clean-up: every job this run starts is ended, also on error or Ctrl-C -----------

const live = new Set();
const work = mkdtempSync(join(STORE_DIR, 'ckpt-bench-jobs-'));
function cleanup() {
  for (const job of live) job.kill('ended by bench/jobs.mjs');
  rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
}

function track(job) {
  live.add(job);
  void job.wait().then(() => live.delete(job));
  return job;
}

async function endJob(job) {
  job.kill('ended by bench/jobs.mjs');
  await withTimeout(job.wait(), 10_000, `job ${job.id} to end`);
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Collects the ranks' BENCH lines; waitFor(pred, count) resolves with `count`
 * matching records. From a job's 'output' events, or — for a restarted job, whose
 * restored ranks may print before restartSnapshot() returns — from the `output`
 * sinks (prefix mode) handed to the restart, there from the start.
 */
function benchLines(job) {
  const records = [];
  let waiters = [];
  const feed = (rank, stream, text) => {
    if (stream === 'stderr' && text.startsWith('BENCH ')) {
      records.push({ rank, ...JSON.parse(text.slice(6)) });
      waiters = waiters.filter((w) => !w());
    } else if (text.trim()) process.stderr.write(`[${rank}] ${text}\n`);
  };
  job?.on('output', ({ rank, stream, line }) => feed(rank, stream, line.toString()));
  const sink = (stream) => {
    let rest = '';
    return new Writable({
      write(chunk, _enc, done) {
        const parts = (rest + chunk.toString()).split('\n');
        rest = parts.pop();
        for (const l of parts) {
          const m = /^\[(\d+)\] (.*)$/.exec(l);
          if (m) feed(Number(m[1]), stream, m[2]);
        }
        done();
      },
    });
  };
  return {
    output: { mode: 'prefix', stdout: sink('stdout'), stderr: sink('stderr') },
    waitFor(pred, count, what) {
      const done = (resolve) => {
        const got = records.filter(pred);
        if (got.length < count) return false;
        resolve(got);
        return true;
      };
      return withTimeout(
        new Promise((resolve) => {
          if (!done(resolve)) waiters.push(() => done(resolve));
        }),
        WAIT_MS,
        what,
      );
    },
  };
}

const ready = (job) => (job.isReady ? Promise.resolve() : withTimeout(new Promise((r) => job.once('ready', r)), WAIT_MS, 'the job to start'));

// ---- statistics ----------------------------------------------------------------------

const median = (xs) => {
  const a = xs.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  if (!a.length) return NaN;
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
};
const max = (xs) => Math.max(...xs);
const min = (xs) => Math.min(...xs);
const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

// ---- one N ---------------------------------------------------------------------------

async function measure(n, crs) {
  const store = join(work, `${crs}-n${n}`);
  const job = track(
    await launchJob({
      command: process.execPath,
      args: [PROGRAM],
      size: n,
      name: `bench-jobs-${process.pid}-${n}`,
      output: { mode: 'events' },
      env: { BENCH_THINK_MS: String(THINK_MS), BENCH_STATE_BYTES: String(STATE_BYTES) },
      store,
      register: false,
      crs,
    }),
  );
  const lines = benchLines(job);
  const checkpoints = [];
  const restarts = [];
  try {
    await ready(job);
    await sleep(200);
    const request = { crs };
    const WARMUP = warmupFor(crs);
    for (let rep = 0; rep < WARMUP + repsFor(crs); rep++) {
      await sleep(30 + Math.random() * 50); // the ranks are somewhere in their loop
      const t0 = now();
      const snap = await withTimeout(job.checkpoint(request), WAIT_MS, `checkpoint ${rep + 1} of ${n} ranks`);
      const t1 = now();
      if (snap.manifest.crs.name !== crs) throw new Error(`asked for a ${crs} checkpoint, got ${snap.manifest.crs.name}`);
      const ranks = await lines.waitFor((x) => x.k === 'ckpt' && x.seq === snap.seq, n, `the ranks' timestamps of checkpoint ${snap.seq}`);
      if (rep >= WARMUP) checkpoints.push(crs === 'self' ? checkpointFigures(t0, t1, ranks, snap) : criuFigures(t0, t1, ranks, snap));
    }
    // The snapshot the restarts start from: the job ends with it.
    await withTimeout(job.checkpoint({ ...request, then: 'terminate' }), WAIT_MS, 'the final checkpoint');
    const ended = await withTimeout(job.wait(), 10_000, 'the checkpointed job to end');
    if (ended.status !== 0 && !ended.checkpointed) throw new Error(`the job ended by its checkpoint exited ${ended.status}: ${ended.error?.message}`);
  } finally {
    if (live.has(job)) await endJob(job).catch(() => {});
  }

  let restartError;
  for (let rep = 0; rep < restartsFor(crs) && !restartError; rep++) {
    const t0 = now();
    const l2 = benchLines();
    let tReady;
    const restarted = await restartSnapshot(store, { job: { output: l2.output, register: false } });
    const tReturned = now();
    const job2 = track(restarted.process.job);
    try {
      if (job2.isReady) tReady = tReturned;
      else job2.once('ready', () => (tReady = now()));
      const first = await l2.waitFor((x) => x.k === 'first-recv', n, 'the first messages after the restart');
      const loaded = await l2.waitFor((x) => x.k === 'restart', n, 'the restarted ranks');
      restarts.push({
        returned: tReturned - t0,
        ready: tReady === undefined ? NaN : tReady - t0,
        loaded: max(loaded.map((x) => x.loaded)) - t0,
        firstMessage: min(first.map((x) => x.t)) - t0,
        allExchanged: max(first.map((x) => x.t)) - t0,
      });
    } catch (err) {
      // The checkpoint figures stand; the restart's failure is reported with them.
      restartError = `restart ${rep + 1} of ${n} ranks: ${err.message}`;
    } finally {
      await endJob(job2).catch(() => {});
    }
  }
  return { n, crs, checkpoints, restarts, restartError };
}

function checkpointFigures(t0, t1, ranks, snap) {
  const total = t1 - t0;
  if (!ranks.length) return { total };
  // Each rank's local snapshot as the library timed it (recorded in the manifest):
  // save(), then its files written and fsynced. (The fixture's own save → saved span
  // ends before the library has written the files.)
  const timed = (snap?.manifest?.data?.saveMs ?? []).filter((x) => typeof x === 'number');
  const slowestSave = timed.length === ranks.length ? max(timed) : max(ranks.map((x) => x.saved - x.prep));
  return {
    total,
    slowestSave,
    overhead: total - slowestSave,
    paused: max(ranks.map((x) => x.run)) - min(ranks.map((x) => x.stop)),
    // Where the time goes (from the request in this process):
    phases: {
      stop: max(ranks.map((x) => x.stop)) - t0, // prepare + reach: the last rank stands at the target safe point
      drain: min(ranks.map((x) => x.prep)) - max(ranks.map((x) => x.stop)), // reach reply, drain, save request
      save: max(ranks.map((x) => x.saved)) - min(ranks.map((x) => x.prep)), // first save begins → last save replied
      commit: min(ranks.map((x) => x.cont)) - max(ranks.map((x) => x.saved)), // manifest, checksums, fsync, rename
      resume: t1 - min(ranks.map((x) => x.cont)), // resume requests and replies
    },
    ranks: ranks.map(({ rank, stop, prep, save, saved, cont, run }) => ({ rank, stop: stop - t0, prep: prep - t0, save: save - t0, saved: saved - t0, cont: cont - t0, run: run - t0 })),
  };
}

/** criu: the ranks cannot see their dump end (no hook); `local` is their span from the
 *  dump request to the resume, an upper bound of the slowest dump (it holds the commit too). */
function criuFigures(t0, t1, ranks, snap) {
  const total = t1 - t0;
  const local = max(ranks.map((x) => x.cont - x.prep));
  // Each rank's own dump, as it timed it (recorded in the manifest): the slowest local snapshot.
  const dumps = (snap?.manifest?.data?.dumpMs ?? []).filter((x) => typeof x === 'number');
  const slowestDump = dumps.length ? max(dumps) : NaN;
  return {
    total,
    dumpToResume: local,
    overheadAtLeast: total - local,
    slowestDump,
    overhead: total - slowestDump,
    paused: max(ranks.map((x) => x.run)) - min(ranks.map((x) => x.prep)),
    ranks: ranks.map(({ rank, prep, cont, run }) => ({ rank, prep: prep - t0, cont: cont - t0, run: run - t0 })),
  };
}

function summarize(r) {
  const c = r.checkpoints;
  const pick = (f) => median(c.map(f));
  return {
    n: r.n,
    crs: r.crs,
    total: pick((x) => x.total),
    slowestSave: pick((x) => x.slowestSave),
    overhead: pick((x) => x.overhead),
    paused: pick((x) => x.paused),
    dumpToResume: pick((x) => x.dumpToResume),
    overheadAtLeast: pick((x) => x.overheadAtLeast),
    slowestDump: pick((x) => x.slowestDump),
    phases: Object.fromEntries(['stop', 'drain', 'save', 'commit', 'resume'].map((p) => [p, pick((x) => x.phases?.[p])])),
    totalMin: min(c.map((x) => x.total)),
    totalMax: max(c.map((x) => x.total)),
    restartError: r.restartError,
    restart: Object.fromEntries(['returned', 'ready', 'loaded', 'firstMessage', 'allExchanged'].map((k) => [k, median(r.restarts.map((x) => x[k]))])),
  };
}

// ---- does a job checkpoint with this checkpointer? ------------------------------------

async function support(crs) {
  if (crs === 'self') return { ok: true };
  const job = track(
    await launchJob({
      command: process.execPath,
      args: [PROGRAM],
      size: 1,
      output: { mode: 'events' },
      env: { BENCH_THINK_MS: String(THINK_MS) },
      store: join(work, `probe-${crs}`),
      register: false,
      crs,
    }),
  );
  benchLines(job);
  try {
    await ready(job);
    const snap = await withTimeout(job.checkpoint({ crs }), WAIT_MS, `a ${crs} checkpoint`);
    const used = snap.manifest.crs.name;
    if (used !== crs) return { ok: false, reason: `job checkpoints use only the '${used}' checkpointer in this build (job.checkpoint({ crs: '${crs}' }) made a '${used}' snapshot)` };
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `a ${crs} checkpoint of a job failed: ${err.message}` };
  } finally {
    await endJob(job).catch(() => {});
  }
}

// ---- report --------------------------------------------------------------------------

function fsType(dir) {
  try {
    return execFileSync('findmnt', ['-n', '-o', 'FSTYPE', '-T', dir], { encoding: 'utf8' }).trim().split('\n')[0];
  } catch {
    return '?';
  }
}

/** Median time to write and fsync a 1 KiB file and fsync its directory (ms). */
function fsyncBaseline() {
  const times = [];
  const buf = Buffer.alloc(1024, 120);
  for (let i = 0; i < 21; i++) {
    const t0 = now();
    const fd = openSync(join(work, `fsync-${i}`), 'w', 0o600);
    writeSync(fd, buf);
    fsyncSync(fd);
    closeSync(fd);
    const dfd = openSync(work, 'r');
    fsyncSync(dfd);
    closeSync(dfd);
    times.push(now() - t0);
  }
  return median(times);
}

/**
 * What one request/reply round costs here with nothing of ckpt in it: N idle bare
 * `node` processes, each connected to this process by a unix socket, echo a
 * 100-byte message; the median of 21 rounds (ms), 20–50 ms apart. A coordinated
 * checkpoint is a few such rounds (plus the commit's fsyncs): the floor it sits on.
 */
async function bareRound(n) {
  const path = join(work, `round-${n}.sock`);
  const sockets = [];
  const server = createServer((s) => sockets.push(s));
  await new Promise((r) => server.listen(path, r));
  const children = Array.from({ length: n }, () =>
    spawn(process.execPath, ['-e', "const s = require('node:net').connect(process.env.SOCK); s.on('data', (d) => s.write(d)); s.on('error', () => process.exit(0));"], {
      env: { ...process.env, SOCK: path },
      stdio: 'ignore',
      detached: true,
    }),
  );
  try {
    const deadline = now() + 30_000;
    while (sockets.length < n) {
      if (now() > deadline) throw new Error(`bare round: only ${sockets.length} of ${n} processes connected`);
      await sleep(10);
    }
    const msg = Buffer.alloc(100, 1);
    const times = [];
    for (let i = 0; i < 21; i++) {
      await sleep(20 + Math.random() * 30);
      const t0 = now();
      await Promise.all(sockets.map((s) => new Promise((r) => (s.once('data', r), s.write(msg)))));
      times.push(now() - t0);
    }
    return median(times);
  } finally {
    for (const c of children) {
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const s of sockets) s.destroy();
    server.close();
  }
}

function printSelf(sums) {
  const base = sums.find((x) => x.n === 1)?.overhead ?? sums[0].overhead;
  log(`\n== self: global checkpoint of N ranks (medians of ${REPS}, ms) ==`);
  log('   N | total (min–max)     | slowest save | overhead | overhead/ovh(1) vs N | paused');
  for (const x of sums) {
    const ratio = x.overhead / base;
    log(
      `${String(x.n).padStart(4)} | ${fmt(x.total).padStart(6)} (${fmt(x.totalMin)}–${fmt(x.totalMax)})`.padEnd(28) +
        `| ${fmt(x.slowestSave, 2).padStart(12)} | ${fmt(x.overhead).padStart(8)} | ${fmt(ratio, 2).padStart(6)} vs ${String(x.n).padStart(2)}${ratio > x.n ? ' !' : '  '}      ` +
        `| ${fmt(x.paused).padStart(6)}`,
    );
  }
  const at16 = sums.find((x) => x.n === 16);
  if (at16) log(`goal: overhead ≤ 10 ms at N = 16 → ${fmt(at16.overhead)} ms (${at16.overhead <= 10 ? 'met' : 'NOT met'}); growth ≤ N → ${sums.every((x) => x.overhead / base <= Math.max(1, x.n)) ? 'met' : 'NOT met'}`);
  log('\nbaseline: one request/reply round to N idle bare node processes (unix sockets; median of 21, ms), and the overhead in such rounds');
  log(`   N | ${sums.map((x) => String(x.n).padStart(6)).join(' | ')}`);
  log(`round | ${sums.map((x) => fmt(x.bareRoundMs, 2).padStart(6)).join(' | ')}`);
  log(`ovh/rd| ${sums.map((x) => fmt(x.overhead / x.bareRoundMs, 1).padStart(6)).join(' | ')}`);
  log('\nwhere the time goes (medians, ms): stop = request → last rank at its safe point; drain = → first save begins;');
  log('save = first save begins → last save replied; commit = → first resume arrives; resume = → checkpoint() resolves');
  log('   N |   stop |  drain |   save | commit | resume');
  for (const x of sums) log(`${String(x.n).padStart(4)} | ${['stop', 'drain', 'save', 'commit', 'resume'].map((p) => fmt(x.phases[p], 2).padStart(6)).join(' | ')}`);
}

function printCriu(crs, sums) {
  log(`\n== ${crs}: global checkpoint of N ranks (medians of ${Math.min(REPS, CRIU_REPS)}, no warm-up, ms) ==`);
  log('slowest dump = the longest own CRIU dump, as the rank timed it (manifest data.dumpMs): the slowest local');
  log('snapshot, so overhead = total − it; dump→resume = the slowest rank from its dump request to its resume (dump, rejoin');
  log('and the commit); paused = first dump request → last rank running');
  log('   N | total (min–max)         | slowest dump | overhead | overhead/ovh(1) vs N | dump→resume | paused');
  const base = sums[0]?.overhead;
  for (const x of sums) {
    log(
      `${String(x.n).padStart(4)} | ${fmt(x.total).padStart(7)} (${fmt(x.totalMin)}–${fmt(x.totalMax)})`.padEnd(32) +
        `| ${fmt(x.slowestDump).padStart(12)} | ${fmt(x.overhead).padStart(8)} | ${fmt(x.overhead / base, 2).padStart(6)} vs ${String(x.n).padStart(2)}        ` +
        `| ${fmt(x.dumpToResume).padStart(11)} | ${fmt(x.paused).padStart(7)}`,
    );
  }
  const at16 = sums.find((x) => x.n === 16);
  if (at16) log(`goal: overhead ≤ 10 ms at N = 16 → ${fmt(at16.overhead)} ms (${at16.overhead <= 10 ? 'met' : 'NOT met'})`);
}

function printRestart(sums) {
  log('\nrestart (medians, ms from restartSnapshot()): returned = it resolved (verify + spawn/restore); ready = every rank joined;');
  log('loaded = last rank\'s restart hook (self: after load()); 1st msg = first recv of a post-restart message on any rank; all = on every rank');
  log('   N | returned |  ready | loaded | 1st msg |    all');
  for (const x of sums) log(`${String(x.n).padStart(4)} | ${['returned', 'ready', 'loaded', 'firstMessage', 'allExchanged'].map((k, i) => fmt(x.restart[k]).padStart(i ? (i === 3 ? 7 : 6) : 8)).join(' | ')}`);
  for (const x of sums) if (x.restartError) log(`N = ${x.n}: ${x.restartError}`);
}

async function main() {
  const started = now();
  const report = { node: process.version, date: new Date().toISOString(), cpus: (await import('node:os')).cpus().length, thinkMs: THINK_MS, stateBytes: STATE_BYTES, reps: REPS, restarts: RESTARTS, store: `${STORE_DIR} (${fsType(work)})`, crs: {} };
  report.fsyncMs = fsyncBaseline();
  report.loadavg = (await import('node:os')).loadavg().map((x) => +x.toFixed(2));
  log(`job checkpoints: N = ${RANKS.join(', ')}; per N: ${CRS.map((c) => `${c} ${repsFor(c)} checkpoints (+${warmupFor(c)} warm-up) and ${restartsFor(c)} restarts`).join(', ')}; think ${THINK_MS} ms; state ${STATE_BYTES} B; store on ${report.store}; ${report.cpus} CPUs, load average ${report.loadavg.join(' ')}`);
  log(`baseline: write + fsync of a 1 KiB file + fsync of its directory there: ${fmt(report.fsyncMs, 2)} ms (median of 21)`);
  report.bareRoundMs = {};
  for (const n of RANKS) report.bareRoundMs[n] = await bareRound(n);
  log(`baseline: one request/reply round to N idle bare node processes: ${RANKS.map((n) => `N = ${n} ${fmt(report.bareRoundMs[n], 2)} ms`).join(', ')}`);
  for (const crs of CRS) {
    const s = await support(crs);
    if (!s.ok) {
      log(`\n== ${crs}: skipped — ${s.reason}`);
      report.crs[crs] = { skipped: s.reason };
      continue;
    }
    let sums;
    try {
      const runs = [];
      for (const n of RANKS) {
        try {
          runs.push(await measure(n, crs));
        } catch (err) {
          throw new Error(`N = ${n}: ${err.message}`);
        }
      }
      sums = runs.map((r) => ({ ...summarize(r), bareRoundMs: report.bareRoundMs[r.n] }));
      report.crs[crs] = { runs, summary: sums };
    } catch (err) {
      // One checkpointer failing does not lose the other's figures.
      log(`\n== ${crs}: failed — ${err.message}`);
      report.crs[crs] = { failed: err.message };
      continue;
    }
    if (crs === 'self') printSelf(sums);
    else printCriu(crs, sums);
    printRestart(sums);
  }
  log(`\n(${((now() - started) / 1000).toFixed(0)} s; load average at the end ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')})`);
  if (JSON_OUT) console.log(JSON.stringify(report));
}

try {
  await main();
} catch (err) {
  console.error(`bench/jobs.mjs: ${err.stack ?? err}`);
  process.exitCode = 1;
} finally {
  for (const job of [...live]) await endJob(job).catch(() => {});
}

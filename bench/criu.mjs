#!/usr/bin/env node
// Single-process checkpoint/restart benchmark: ckpt beside the bare `criu` CLI, in
// the same run, on a C process holding N MB of live, non-zero memory.
//   node bench/criu.mjs [--sizes 10,200,1024] [--reps N] [--json]
// Needs root, a working CRIU (`ckpt setup criu`) and dist/ (npm install).
// Not a test: figures depend on the machine. Goal (issue 2): ckpt adds under 5 %
// (or under 20 ms) to the bare CRIU time at every size; dump throughput is given
// as a ratio to `cp` of the same image files.
//
// Per size and repetition (the order of the bare and ckpt halves alternates):
//   bare:  criu dump (kill mode) → sync of its files → cp -r of the images → sync
//          of the copy → criu restore --restore-detached → kill the restored tree
//   ckpt:  checkpointProcess(then: 'terminate') → restartSnapshot(verify: false)
//          → kill → restartSnapshot(verify: true) → kill
// Every figure is a wall-clock median. The image files stay in the page cache
// (restores read from memory, as they would right after a dump).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

// ---- arguments ---------------------------------------------------------------------

function argValue(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}
const SIZES = (argValue('--sizes') ?? '10,200,1024').split(',').map((s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--sizes: '${s}' is not a size in MB`);
  return n;
});
const REPS_ARG = argValue('--reps');
if (REPS_ARG !== undefined && !(Number.isInteger(Number(REPS_ARG)) && Number(REPS_ARG) > 0)) throw new Error('--reps: a positive integer');
/** Default repetitions: more for small sizes, where noise is largest relative to the time. */
const repsFor = (mb) => (REPS_ARG ? Number(REPS_ARG) : mb <= 64 ? 9 : mb <= 512 ? 7 : 5);
const JSON_OUT = process.argv.includes('--json');
const log = JSON_OUT ? (...a) => console.error(...a) : (...a) => console.log(...a);

if (process.geteuid?.() !== 0) {
  console.error('bench/criu.mjs: CRIU needs root; run as root');
  process.exit(2);
}

const { checkpointProcess, restartSnapshot } = await import('../dist/index.js');
const { findCriu } = await import('../dist/criu/locate/find.js');
const { logsDir } = await import('../dist/util/paths.js');
const { hashFiles, listFiles } = await import('../dist/store/checksum.js');
const CRIU = (await findCriu()).path;

// ---- process hygiene ---------------------------------------------------------------
// Every target runs in its own session and process group (setsid); we kill by group
// and never signal a pid ≤ 1.

const live = new Set(); // pids (= pgids) of targets and restored trees we own
const helpers = new Set(); // criu, cp, sync: our direct children
const WORK = mkdtempSync(join(tmpdir(), 'ckpt-bench-criu-'));
const startedAt = Date.now();

function readStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: f[0], ppid: Number(f[1]), pgid: Number(f[2]), sid: Number(f[3]) };
  } catch {
    return undefined;
  }
}

function killGroup(pid) {
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`refusing to signal pid ${pid}`);
  const st = readStat(pid);
  try {
    // A group kill only when pid leads its own group (our targets do); else the pid alone.
    process.kill(st && st.pgid === pid ? -pid : pid, 'SIGKILL');
  } catch (err) {
    if (err.code !== 'ESRCH') throw err;
  }
}

/** Waits until /proc/PID is gone (a zombie re-parented to init is reaped slowly here). */
async function waitGone(pid, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (existsSync(`/proc/${pid}`)) {
    if (Date.now() > deadline) throw new Error(`pid ${pid} still present after ${timeoutMs} ms`);
    await sleep(5);
  }
}

async function endTree(pid) {
  killGroup(pid);
  await waitGone(pid);
  live.delete(pid);
}

let cleaningUp = false;
function cleanup() {
  if (cleaningUp) return;
  cleaningUp = true;
  for (const child of helpers) {
    try {
      if (child.pid > 1) child.kill('SIGKILL');
    } catch {}
  }
  for (const pid of live) {
    try {
      if (pid > 1) process.kill(-pid, 'SIGKILL');
    } catch {}
    try {
      if (pid > 1) process.kill(pid, 'SIGKILL');
    } catch {}
  }
  rmSync(WORK, { recursive: true, force: true });
  // ckpt's restores leave a log directory each, named …-<our pid>.
  try {
    const dir = logsDir();
    for (const name of readdirSync(dir)) {
      if (name.startsWith('restore-') && name.endsWith(`-${process.pid}`) && statSync(join(dir, name)).mtimeMs >= startedAt - 1000) {
        rmSync(join(dir, name), { recursive: true, force: true });
      }
    }
  } catch {}
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
}

// ---- the target --------------------------------------------------------------------

const TARGET_C = String.raw`
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc < 3) return 2;
  size_t n = (size_t)strtoull(argv[1], 0, 10) << 20;
  uint64_t *p = malloc(n);
  if (!p) return 3;
  /* xorshift64: every page dirty, non-zero, incompressible. */
  uint64_t x = 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid(), sum = 0;
  for (size_t i = 0; i < n / 8; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; p[i] = x; sum += x; }
  char msg[64];
  int len = snprintf(msg, sizeof msg, "ready %llx\n", (unsigned long long)sum);
  int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || write(fd, msg, len) != len) return 4;
  close(fd);
  for (;;) { sleep(1); sum += p[(sum >> 3) % (n / 8)]; }
}
`;

function buildTarget() {
  const src = join(WORK, 'memhog.c');
  const bin = join(WORK, 'memhog');
  writeFileSync(src, TARGET_C);
  const r = spawnSync('gcc', ['-O2', '-o', bin, src], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gcc failed: ${r.stderr || r.error}`);
  return bin;
}
const TARGET = buildTarget();

let targetNo = 0;
/** Starts a target holding `mb` MB and waits until its memory is filled. */
async function startTarget(mb) {
  const ready = join(WORK, `ready-${++targetNo}`);
  // stdio 'ignore' is /dev/null; detached = setsid: own session and process group.
  const child = spawn(TARGET, [String(mb), ready], { cwd: WORK, stdio: 'ignore', detached: true });
  const exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
  child.on('error', () => {});
  const pid = child.pid;
  if (!(pid > 1)) throw new Error('could not start the target');
  live.add(pid);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (existsSync(ready) && readFileSync(ready, 'utf8').endsWith('\n')) break;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`target exited early (${child.exitCode ?? child.signalCode})`);
    if (Date.now() > deadline) throw new Error('target not ready after 60 s');
    await sleep(5);
  }
  rmSync(ready);
  /** After a dump killed it: reaped (by us, it is our child) and its pid free. */
  const gone = async () => {
    await exited;
    await waitGone(pid);
    live.delete(pid);
  };
  return { pid, gone };
}

// ---- helpers -----------------------------------------------------------------------

/** Runs a command; resolves its wall time in ms; throws on failure. */
function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    helpers.add(child);
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      helpers.delete(child);
      const ms = performance.now() - t0;
      if (code === 0) resolve(ms);
      else reject(new Error(`${cmd} ${args.join(' ')}: exit ${code ?? signal}: ${err.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

function filesUnder(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}
const bytesUnder = (dir) => filesUnder(dir).reduce((n, f) => n + statSync(f).size, 0);
/** fsync of every file and of the directory, like ckpt's commit (coreutils `sync FILE…`). */
const syncDir = (dir) => run('sync', [dir, ...filesUnder(dir)]);
const syncAll = () => run('sync', []);

/**
 * The CRIU options ckpt uses, spelt for the CLI: the same shell-job rule as ckpt's
 * record, and the same network rule — the target holds no TCP socket, so no lock and
 * no tcp-established (`BENCH_NETWORK_LOCK=nftables` for the old always-lock baseline).
 */
function criuCommon(shellJob) {
  const net = process.env.BENCH_NETWORK_LOCK === 'nftables' ? ['--tcp-established', '--network-lock', 'nftables'] : ['--network-lock', 'skip'];
  return [...(shellJob ? ['--shell-job'] : []), ...net, '--file-locks', '-v3'];
}
function needsShellJob(pid) {
  const st = readStat(pid);
  return !st || st.sid !== pid || st.pgid !== pid;
}

// ---- one repetition ----------------------------------------------------------------

async function bareHalf(mb, rep) {
  const r = {};
  const images = join(WORK, `bare-${mb}-${rep}`);
  const copy = `${images}-cp`;
  mkdirSync(images, { mode: 0o700 });
  const t = await startTarget(mb);
  const shellJob = needsShellJob(t.pid);
  await syncAll();
  const d0 = performance.now();
  r.dump = await run(CRIU, ['dump', '-t', String(t.pid), '-D', images, ...criuCommon(shellJob), '-o', 'dump.log']);
  await t.gone();
  r.dumpUntilGone = performance.now() - d0;
  r.dumpSyncOnly = await syncDir(images);
  r.dumpSync = r.dump + r.dumpSyncOnly;
  r.imageBytes = bytesUnder(images);
  r.cp = await run('cp', ['-r', images, copy]);
  r.cpSyncOnly = await syncDir(copy);
  r.cpSync = r.cp + r.cpSyncOnly;
  rmSync(copy, { recursive: true, force: true });

  const pidfile = join(WORK, `restored-${mb}-${rep}.pid`);
  rmSync(pidfile, { force: true });
  try {
    r.restore = await run(CRIU, ['restore', '-D', images, ...criuCommon(shellJob), '-o', 'restore.log', '--restore-detached', '--pidfile', pidfile]);
  } finally {
    // Whatever happened, a restored tree must not outlive us.
    const pid = existsSync(pidfile) ? Number(readFileSync(pidfile, 'utf8').trim()) : NaN;
    if (Number.isInteger(pid) && pid > 1) {
      live.add(pid);
      if (!r.restore || pid !== t.pid) r.restoreError = `restored pid ${pid}, expected ${t.pid}`;
      else if (!readStat(pid) || readStat(pid).state === 'Z') r.restoreError = `restored process ${pid} is not running`;
      await endTree(pid);
    }
  }
  if (r.restoreError) throw new Error(`bare criu restore: ${r.restoreError}`);
  rmSync(images, { recursive: true, force: true });
  return r;
}

async function ckptHalf(mb, rep, store) {
  const r = {};
  const t = await startTarget(mb);
  await syncAll();
  const marks = {};
  const t0 = performance.now();
  const snapshot = await checkpointProcess({
    pid: t.pid,
    dir: store,
    then: 'terminate',
    onProgress: (m) => {
      const now = performance.now() - t0;
      if (m.startsWith('dumping process tree')) marks.criuStart = now;
      else if (m.startsWith('committing')) marks.criuEnd = now;
      else if (m.startsWith('syncing and checksumming') || m.startsWith('checksumming')) marks.hashStart = now;
    },
  });
  r.dump = performance.now() - t0;
  // setup: CRIU probe (criu --version), /proc record, snapshot dir; criu: swrk session
  // from start to response (incl. notify round trips); then listing the files; then
  // the commit proper: fsync and checksums (concurrently) + manifest + rename + SIGKILL.
  r.dumpSetup = marks.criuStart;
  r.dumpCriu = marks.criuEnd - marks.criuStart;
  r.dumpFsync = marks.hashStart - marks.criuEnd;
  r.dumpHash = r.dump - marks.hashStart;
  r.imageBytes = snapshot.manifest.files.reduce((n, f) => n + f.size, 0);
  await t.gone();
  r.dumpUntilGone = performance.now() - t0;
  // ckpt's own checksum code alone, on the same (page-cached) files: the rest of the
  // last phase is the manifest's atomic write, the rename, the fsyncs and the kill.
  const files = (await listFiles(snapshot.dir)).filter((f) => !f.endsWith('/manifest.json'));
  const h0 = performance.now();
  await hashFiles(snapshot.dir, files);
  r.sha256Only = performance.now() - h0;

  for (const verify of [false, true]) {
    const key = verify ? 'restoreVerify' : 'restore';
    let criuAt = 0;
    const s0 = performance.now();
    const { process: p } = await restartSnapshot(snapshot.dir, {
      verify,
      onProgress: (m) => {
        if (m.startsWith('restoring with CRIU')) criuAt = performance.now() - s0;
      },
    });
    r[key] = performance.now() - s0;
    r[`${key}Pre`] = criuAt; // open + (verify) + probe + pid check, before CRIU starts
    r[`${key}Criu`] = r[key] - criuAt;
    if (!(p.pid > 1)) throw new Error(`ckpt restore gave pid ${p.pid}`);
    live.add(p.pid);
    const st = readStat(p.pid);
    const ok = p.pid === t.pid && st && st.state !== 'Z';
    killGroup(p.pid);
    await p.wait();
    await waitGone(p.pid);
    live.delete(p.pid);
    if (!ok) throw new Error(`ckpt restore: process ${p.pid} (expected ${t.pid}) is not running`);
  }
  rmSync(snapshot.dir, { recursive: true, force: true });
  return r;
}

// ---- statistics and report ---------------------------------------------------------

function median(values) {
  const a = values.filter((v) => Number.isFinite(v)).sort((x, y) => x - y);
  if (a.length === 0) return NaN;
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
}
const ms = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
const MB = (b) => b / 1e6;

function compare(ckpt, bare) {
  const over = ckpt - bare;
  const ratio = ckpt / bare;
  return { ckpt, bare, overheadMs: over, ratio, goalMet: ratio < 1.05 || over < 20 };
}

function summarise(mb, reps) {
  const b = (k) => median(reps.map((r) => r.bare[k]));
  const c = (k) => median(reps.map((r) => r.ckpt[k]));
  const imageBytes = median(reps.map((r) => r.ckpt.imageBytes));
  const s = {
    sizeMB: mb,
    reps: reps.length,
    imageMB: MB(imageBytes),
    bareImageMB: MB(median(reps.map((r) => r.bare.imageBytes))),
    bare: { dump: b('dump'), dumpUntilGone: b('dumpUntilGone'), dumpSyncOnly: b('dumpSyncOnly'), dumpSync: b('dumpSync'), restore: b('restore'), cp: b('cp'), cpSync: b('cpSync') },
    ckpt: {
      dump: c('dump'),
      dumpSetup: c('dumpSetup'),
      dumpCriu: c('dumpCriu'),
      dumpFsync: c('dumpFsync'),
      dumpHash: c('dumpHash'),
      sha256Only: c('sha256Only'),
      dumpUntilGone: c('dumpUntilGone'),
      restore: c('restore'),
      restorePre: c('restorePre'),
      restoreCriu: c('restoreCriu'),
      restoreVerify: c('restoreVerify'),
      restoreVerifyPre: c('restoreVerifyPre'),
    },
  };
  s.goal = {
    dump: compare(s.ckpt.dump, s.bare.dump),
    dumpVsBareSync: compare(s.ckpt.dump, s.bare.dumpSync),
    dumpUntilGone: compare(s.ckpt.dumpUntilGone, s.bare.dumpUntilGone),
    restore: compare(s.ckpt.restore, s.bare.restore),
    restoreVerify: compare(s.ckpt.restoreVerify, s.bare.restore),
  };
  const thr = (t) => MB(imageBytes) / (t / 1000);
  s.throughputMBs = {
    cp: thr(s.bare.cp),
    cpSync: thr(s.bare.cpSync),
    bareDump: thr(s.bare.dump),
    bareDumpSync: thr(s.bare.dumpSync),
    ckptDump: thr(s.ckpt.dump),
  };
  // Throughput as a fraction of cp's (1.0 = as fast as copying the images).
  s.throughputVsCp = {
    bareDump: s.bare.cp / s.bare.dump,
    bareDumpSyncVsCpSync: s.bare.cpSync / s.bare.dumpSync,
    ckptDump: s.bare.cp / s.ckpt.dump,
    ckptDumpVsCpSync: s.bare.cpSync / s.ckpt.dump,
  };
  return s;
}

function printSummary(s) {
  const g = s.goal;
  const row = (label, x) =>
    `  ${label.padEnd(34)} ${ms(x.ckpt).padStart(8)} ${ms(x.bare).padStart(8)} ${x.ratio.toFixed(3).padStart(7)} ${`${x.overheadMs >= 0 ? '+' : ''}${ms(x.overheadMs)}`.padStart(9)}  ${x.goalMet ? 'yes' : 'NO'}`;
  log(`\n== ${s.sizeMB} MB live memory: images ${s.imageMB.toFixed(1)} MB (ckpt) / ${s.bareImageMB.toFixed(1)} MB (bare); median of ${s.reps} ==`);
  log(`  ${'ms'.padEnd(34)} ${'ckpt'.padStart(8)} ${'bare'.padStart(8)} ${'ratio'.padStart(7)} ${'overhead'.padStart(9)}  goal (<5% or <20ms)`);
  log(row('dump        ckpt vs criu dump', g.dump));
  log(row('dump        ckpt vs criu dump+sync', g.dumpVsBareSync));
  log(row('dump        until the target is gone', g.dumpUntilGone));
  log(row('restore     ckpt --no-verify vs criu', g.restore));
  log(row('restore     ckpt (verify) vs criu', g.restoreVerify));
  const c = s.ckpt;
  log(
    `  ckpt dump split: setup ${ms(c.dumpSetup)} + CRIU ${ms(c.dumpCriu)} (bare ${ms(s.bare.dump)}) + listing ${ms(c.dumpFsync)} + fsync∥checksums/manifest/rename ${ms(c.dumpHash)} (bare sync ${ms(s.bare.dumpSyncOnly)}; checksums alone ${ms(c.sha256Only)})`,
  );
  log(
    `  ckpt restore split: before CRIU ${ms(c.restorePre)} (with verify ${ms(c.restoreVerifyPre)}) + CRIU ${ms(c.restoreCriu)} (bare ${ms(s.bare.restore)})`,
  );
  const t = s.throughputMBs;
  const v = s.throughputVsCp;
  log(
    `  throughput MB/s: cp ${t.cp.toFixed(0)}, cp+sync ${t.cpSync.toFixed(0)} | criu dump ${t.bareDump.toFixed(0)} (${v.bareDump.toFixed(2)}× cp), ` +
      `criu dump+sync ${t.bareDumpSync.toFixed(0)} (${v.bareDumpSyncVsCpSync.toFixed(2)}× cp+sync), ` +
      `ckpt dump ${t.ckptDump.toFixed(0)} (${v.ckptDump.toFixed(2)}× cp, ${v.ckptDumpVsCpSync.toFixed(2)}× cp+sync)`,
  );
}

// ---- main --------------------------------------------------------------------------

const store = join(WORK, 'store');
const report = { date: new Date().toISOString(), node: process.version, criu: CRIU, kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), sizes: [] };
const tStart = performance.now();
log(`ckpt vs bare criu (${CRIU}); sizes ${SIZES.join(', ')} MB; work dir ${WORK}`);
// Warm-up (discarded): module loading, CRIU's check cache, page cache of the binaries.
await bareHalf(10, 'warm');
await ckptHalf(10, 'warm', store);
for (const mb of SIZES) {
  const reps = [];
  const n = repsFor(mb);
  for (let i = 0; i < n; i++) {
    // Alternate which half goes first, so neither always follows the other's writeback.
    const rep = {};
    if (i % 2 === 0) {
      rep.bare = await bareHalf(mb, i);
      rep.ckpt = await ckptHalf(mb, i, store);
    } else {
      rep.ckpt = await ckptHalf(mb, i, store);
      rep.bare = await bareHalf(mb, i);
    }
    reps.push(rep);
    if (process.stderr.isTTY) process.stderr.write(`  ${mb} MB: repetition ${i + 1}/${n} done\r`);
  }
  if (process.stderr.isTTY) process.stderr.write(' '.repeat(40) + '\r');
  const s = summarise(mb, reps);
  s.raw = reps;
  report.sizes.push(s);
  printSummary(s);
}
report.totalSeconds = (performance.now() - tStart) / 1000;
log(`\ntotal ${report.totalSeconds.toFixed(0)} s`);
if (JSON_OUT) console.log(JSON.stringify(report, null, 2));

#!/usr/bin/env node
// Transparent-mode benchmark: checkpoint and restart of an isolated job — a 4-rank
// Open MPI ring (mpirun -np 4) and a Node tree (parent, worker thread, two child
// processes over TCP and unix sockets) — through ckpt's library, beside a bare
// `criu dump` / `criu restore` of the same tree with the same options in the same run.
//   node bench/isolate.mjs [--reps N] [--json]
// Not a test: figures depend on the machine. Needs root, CRIU (ckpt setup criu), mpicc.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const work = mkdtempSync('/var/tmp/ckpt-bench-iso-');
process.env.CKPT_STATE_DIR = join(work, 'state');
process.env.UV_USE_IO_URING = '0';
const json = process.argv.includes('--json');
const repsArg = process.argv.indexOf('--reps');
const REPS = repsArg > 0 ? Number(process.argv[repsArg + 1]) : 3;

const { launchIsolated } = await import('../dist/isolate/launch.js');
const { checkpointIsolatedJob } = await import('../dist/isolate/checkpoint.js');
const { restartIsolated } = await import('../dist/isolate/restore.js');
const { readDumpStats, readRestoreStats } = await import('../dist/criu/images.js');
const { findCriu } = await import('../dist/criu/locate.js');
const { IO_MOUNT, IO_EXTERNAL_KEY } = await import('../dist/isolate/namespace-init.js');
const criu = (await findCriu()).path;

/** Every job this benchmark started: ended on the way out, also after an error. */
const started = [];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const now = () => process.hrtime.bigint();

function dirBytes(dir) {
  let n = 0;
  for (const f of readdirSync(dir)) {
    const st = statSync(join(dir, f));
    n += st.isDirectory() ? dirBytes(join(dir, f)) : st.size;
  }
  return n;
}

/** Output sink that resolves when a line matches. */
function lineWatcher() {
  const stream = new PassThrough();
  let buf = '';
  const waiters = [];
  stream.setEncoding('utf8').on('data', (d) => {
    buf += d;
    for (const w of [...waiters]) if (w.re.test(buf)) (waiters.splice(waiters.indexOf(w), 1), w.resolve());
  });
  return { stream, waitFor: (re) => (re.test(buf) ? Promise.resolve() : new Promise((resolve) => waiters.push({ re, resolve }))) };
}

const errors = (log) => readFileSync(log, 'utf8').split('\n').filter((l) => /Error \(/.test(l) && !/RLIMIT|tables/.test(l)).join(' | ');

/** The bare CRIU CLI, same options as ckpt uses, same tree. */
function bareDump(rootPid, dir) {
  const t0 = now();
  const r = spawnSync(criu, ['dump', '-t', String(rootPid), '-D', dir, '-o', 'dump.log', '-v3', '--leave-running', '--tcp-established',
    '--file-locks', '--network-lock', 'nftables', '--external', `mnt[${IO_MOUNT}]:${IO_EXTERNAL_KEY}`], { stdio: 'ignore' });
  const wall = ms(t0);
  if (r.status !== 0) throw new Error(`bare criu dump failed: ${errors(join(dir, 'dump.log'))}`);
  return { wall, frozen: readDumpStats(dir)?.frozenTimeUs / 1000, bytes: dirBytes(dir) };
}

function bareRestore(dir, ioDir) {
  const pidfile = join(dir, 'restored.pid');
  const t0 = now();
  const r = spawnSync(criu, ['restore', '-D', dir, '-o', 'restore.log', '-v3', '--restore-detached', '--tcp-established', '--file-locks',
    '--root', '/', '--external', `mnt[${IO_EXTERNAL_KEY}]:${ioDir}`, '--pidfile', pidfile], { stdio: 'ignore' });
  const wall = ms(t0);
  if (r.status !== 0) throw new Error(`bare criu restore failed: ${errors(join(dir, 'restore.log'))}`);
  const pid = Number(readFileSync(pidfile, 'utf8'));
  if (pid > 1) process.kill(pid, 'SIGKILL');
  return { wall, restore: readRestoreStats(dir)?.restoreTimeUs / 1000 };
}

async function measure(label, command, args, readyRe) {
  const rows = [];
  for (let rep = 0; rep < REPS; rep++) {
    const watch = lineWatcher();
    const job = await launchIsolated({ command, args, net: true, name: `bench-${rep}`, output: { stdout: watch.stream, stderr: watch.stream } });
    started.push(job);
    await watch.waitFor(readyRe);
    const store = join(work, `store-${label}-${rep}`);
    let t0 = now();
    const cp = await checkpointIsolatedJob({ job: job.id, dir: store });
    const ckptWall = ms(t0);
    const bare = join(work, `bare-${label}-${rep}`);
    mkdirSync(bare);
    const bd = bareDump(job.rootPid, bare);

    t0 = now();
    const rs = await restartIsolated(cp.snapshot, { verify: false, output: { stdout: new PassThrough().resume(), stderr: new PassThrough().resume() } });
    const restartWall = ms(t0);
    started.push(rs.job);
    rs.job.kill();
    await rs.job.wait();
    const io = join(work, `io-${label}-${rep}`);
    mkdirSync(io);
    writeFileSync(join(io, 'stdout'), '', { mode: 0o600 });
    writeFileSync(join(io, 'stderr'), '', { mode: 0o600 });
    const br = bareRestore(bare, io);
    job.kill();
    await job.wait();
    rows.push({
      processes: cp.snapshot.manifest.process.tree.length,
      ckptMs: ckptWall,
      dumpMs: cp.dumpMs,
      frozenMs: cp.stats ? cp.stats.frozenTimeUs / 1000 : NaN,
      imageMB: cp.bytes / 1e6,
      bareDumpMs: bd.wall,
      bareFrozenMs: bd.frozen,
      restartMs: restartWall,
      criuRestoreMs: rs.stats ? rs.stats.restoreTimeUs / 1000 : NaN,
      bareRestoreMs: br.wall,
    });
  }
  const m = Object.fromEntries(Object.keys(rows[0]).map((k) => [k, median(rows.map((r) => r[k]))]));
  return { label, reps: REPS, median: m, ckptVsBareDump: m.ckptMs / m.bareDumpMs, restartVsBareRestore: m.restartMs / m.bareRestoreMs, rows };
}

try {
  const ring = join(work, 'ring');
  execFileSync('mpicc', ['-O2', '-o', ring, join(root, 'test/fixtures/isolate/ring.c')]);
  const results = [
    await measure('mpi-4', 'mpirun', ['-np', '4', ring, '100000'], /round 30 /),
    await measure('node-tree', 'node', [join(root, 'test/fixtures/isolate/tree.mjs'), '10000000'], /count tcp=[1-9]\d\d /),
  ];
  if (json) console.log(JSON.stringify(results, null, 2));
  else {
    console.log(`isolate benchmark, median of ${REPS} (checkpoint: continue mode, committed and checksummed; restart: until CRIU returned)`);
    for (const r of results) {
      const m = r.median;
      console.log(`\n${r.label}: ${m.processes} processes, images ${m.imageMB.toFixed(1)} MB`);
      console.log(`  checkpoint ${m.ckptMs.toFixed(0)} ms = CRIU dump ${m.dumpMs.toFixed(0)} ms (frozen ${m.frozenMs.toFixed(0)} ms) + durable commit | bare criu dump ${m.bareDumpMs.toFixed(0)} ms (frozen ${m.bareFrozenMs.toFixed(0)} ms, no fsync)`);
      console.log(`    ratios: checkpoint/bare ${r.ckptVsBareDump.toFixed(2)}, dump/bare ${(m.dumpMs / m.bareDumpMs).toFixed(2)}`);
      console.log(`  restart    ${m.restartMs.toFixed(0)} ms (CRIU restore ${m.criuRestoreMs.toFixed(0)} ms) | bare criu restore ${m.bareRestoreMs.toFixed(0)} ms | ratio ${r.restartVsBareRestore.toFixed(2)}`);
    }
  }
} finally {
  for (const job of started) job.kill();
  await Promise.all(started.map((job) => job.wait()));
  rmSync(work, { recursive: true, force: true });
}

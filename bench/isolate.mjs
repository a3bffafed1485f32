#!/usr/bin/env node
// Transparent-mode benchmark: checkpoint and restart of an isolated job — a 4-rank
// Open MPI ring (mpirun -np 4) and a Node tree (parent, worker thread, two child
// processes over TCP and unix sockets) — through ckpt's library, beside a bare
// `criu dump` / `criu restore` of the same tree with the same options in the same run.
//   node bench/isolate.mjs [--reps N] [--json]
//   node bench/isolate.mjs --pg [--reps N] [--json]   PostgreSQL under pgbench load (issue 17)
// Not a test: figures depend on the machine. Needs root, CRIU (ckpt setup criu), mpicc.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
const { findCriu } = await import('../dist/criu/locate/find.js');
const { IO_MOUNT, IO_EXTERNAL_KEY } = await import('../dist/isolate/namespace-init.js');
const { dumpMountExternals, restoreMountExternals } = await import('../dist/isolate/mounts.js');
const { inUserns } = await import('../dist/isolate/userns.js');
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
  return { stream, text: () => buf, waitFor: (re) => (re.test(buf) ? Promise.resolve() : new Promise((resolve) => waiters.push({ re, resolve }))) };
}

const errors = (log) => readFileSync(log, 'utf8').split('\n').filter((l) => /Error \(/.test(l) && !/RLIMIT|tables/.test(l)).join(' | ');

/** `--external` pairs (a job in a user namespace: its host mounts too). */
const externalArgs = (list) => list.flatMap((e) => ['--external', e]);

/** The bare CRIU CLI, same options as ckpt uses, same tree. */
function bareDump(rootPid, dir, { leaveRunning = true } = {}) {
  const hostMounts = inUserns(rootPid) ? dumpMountExternals(rootPid, true) : [];
  const t0 = now();
  const r = spawnSync(criu, ['dump', '-t', String(rootPid), '-D', dir, '-o', 'dump.log', '-v3', ...(leaveRunning ? ['--leave-running'] : []), '--tcp-established',
    '--file-locks', '--network-lock', 'nftables', ...externalArgs([`mnt[${IO_MOUNT}]:${IO_EXTERNAL_KEY}`, ...hostMounts])], { stdio: 'ignore' });
  const wall = ms(t0);
  if (r.status !== 0) throw new Error(`bare criu dump failed: ${errors(join(dir, 'dump.log'))}`);
  return { wall, frozen: readDumpStats(dir)?.frozenTimeUs / 1000, bytes: dirBytes(dir) };
}

/**
 * A job in a user namespace restores as ckpt does it: criu in a private mount
 * namespace where the external host mounts have no submounts, in mntns compat mode.
 */
function bareRestoreCommand(dir, args) {
  if (!readdirSync(dir).some((f) => /^userns-\d+\.img$/.test(f))) return [criu, args];
  const hostMounts = restoreMountExternals(true);
  const tops = hostMounts.map((e) => e.slice(e.indexOf(']:') + 2));
  const script = `for t in ${tops.map((t) => `'${t}'`).join(' ')}; do awk -v t="$t/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done; done; exec "$@"`;
  return ['unshare', ['--mount', '--propagation', 'private', '--', 'bash', '-c', script, 'bare', criu, ...args, '--mntns-compat-mode', ...externalArgs(hostMounts)]];
}

function bareRestore(dir, ioDir, { keep = false } = {}) {
  const pidfile = join(dir, 'restored.pid');
  const [cmd, args] = bareRestoreCommand(dir, ['restore', '-D', dir, '-o', 'restore.log', '-v3', '--restore-detached', '--tcp-established', '--file-locks',
    '--root', '/', '--external', `mnt[${IO_EXTERNAL_KEY}]:${ioDir}`, '--pidfile', pidfile]);
  const t0 = now();
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  const wall = ms(t0);
  // A restore into a user namespace leaves CRIU's empty /tmp/cr-tmpfs.XXXXXX (its log names it).
  for (const m of readFileSync(join(dir, 'restore.log'), 'utf8').matchAll(/Unable to remove (\/tmp\/cr-tmpfs\.[A-Za-z0-9]+)/g)) {
    try {
      rmdirSync(m[1]);
    } catch {
      // not empty or gone
    }
  }
  if (r.status !== 0) throw new Error(`bare criu restore failed: ${errors(join(dir, 'restore.log'))}`);
  const pid = Number(readFileSync(pidfile, 'utf8'));
  if (pid > 1 && !keep) process.kill(pid, 'SIGKILL');
  return { wall, restore: readRestoreStats(dir)?.restoreTimeUs / 1000, pid };
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

// ---- PostgreSQL under pgbench load (issue 17) ----

const pgBin = (() => {
  try {
    const v = readdirSync('/usr/lib/postgresql').sort().at(-1);
    return v ? `/usr/lib/postgresql/${v}/bin` : undefined;
  } catch {
    return undefined;
  }
})();
const pgDirs = [];

/** A data directory postgres owns, under a 0755 directory outside /tmp, and the job script. */
function pgSetup() {
  const dir = mkdtempSync('/var/tmp/ckpt-bench-pg-');
  pgDirs.push(dir);
  execFileSync('chmod', ['0755', dir]);
  const data = join(dir, 'data');
  execFileSync('install', ['-d', '-m', '0700', '-o', 'postgres', '-g', 'postgres', data]);
  const script = join(dir, 'pgbench-job.sh');
  execFileSync('install', ['-m', '0755', join(root, 'test/fixtures/isolate/pgbench-job.sh'), script]);
  return { data, script };
}

/** The first transaction that started at or after epoch `t` (s), read in the job's network namespace. */
function firstTxAfter(pid, t) {
  const r = spawnSync('nsenter', ['-t', String(pid), '-n', '--', `${pgBin}/psql`, '-h', '127.0.0.1', '-p', '5432', '-U', 'postgres', '-d', 'postgres', '-Atqc',
    `select extract(epoch from min(mtime)) from pgbench_history where mtime >= to_timestamp(${t}) at time zone 'UTC'`], { encoding: 'utf8' });
  const v = r.status === 0 ? Number.parseFloat(r.stdout.trim()) : NaN;
  return Number.isFinite(v) ? v : undefined;
}

async function untilFirstTx(pid, t) {
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
    const v = firstTxAfter(pid, t);
    if (v !== undefined) return (v - t) * 1000;
    await new Promise((r) => setTimeout(r, 20));
  }
  return NaN;
}

const tpsOf = (text) => [...text.matchAll(/^progress: ([\d.]+) s, ([\d.]+) tps/gm)].map((m) => ({ at: Number(m[1]), tps: Number(m[2]) }));

const PG_CLIENTS = '4';
const PG_TX = '100000'; // far more than a rep needs: every job is killed at the end

async function measurePg() {
  const rows = [];
  for (let rep = 0; rep < REPS; rep++) {
    // ckpt: checkpoint --term once pgbench has run 3 s, restart, first transaction, throughput.
    let { data, script } = pgSetup();
    const watch = lineWatcher();
    const job = await launchIsolated({ command: script, args: [data, PG_CLIENTS, PG_TX], net: true, name: `bench-pg-${rep}`, cwd: '/var/tmp', output: { stdout: watch.stream, stderr: watch.stream } });
    started.push(job);
    await watch.waitFor(/^progress: 4\.0 s/m);
    const before = tpsOf(watch.text()).slice(-3).map((p) => p.tps);
    const store = join(work, `store-pg-${rep}`);
    let t0 = now();
    const cp = await checkpointIsolatedJob({ job: job.id, dir: store, then: 'terminate' });
    const ckptWall = ms(t0);
    await job.wait();
    const rwatch = lineWatcher();
    const startEpoch = Date.now() / 1000;
    t0 = now();
    const rs = await restartIsolated(cp.snapshot, { verify: false, output: { stdout: rwatch.stream, stderr: rwatch.stream } });
    const restartWall = ms(t0);
    started.push(rs.job);
    const firstTx = await untilFirstTx(rs.job.rootPid, startEpoch);
    // Throughput in the seconds after the restore: the 2nd to 4th progress lines (the
    // first one spans the restore itself).
    await rwatch.waitFor(/(^progress: .*\n){4}/m);
    const after = tpsOf(rwatch.text()).slice(1, 4).map((p) => p.tps);
    rs.job.kill();
    await rs.job.wait();

    // Bare CRIU, the same kind of tree in the same phase: dump (killed), restore, first transaction.
    ({ data, script } = pgSetup());
    const bwatch = lineWatcher();
    const bjob = await launchIsolated({ command: script, args: [data, PG_CLIENTS, PG_TX], net: true, name: `bench-pg-bare-${rep}`, cwd: '/var/tmp', output: { stdout: bwatch.stream, stderr: bwatch.stream } });
    started.push(bjob);
    await bwatch.waitFor(/^progress: 4\.0 s/m);
    const bare = join(work, `bare-pg-${rep}`);
    mkdirSync(bare);
    const bd = bareDump(bjob.rootPid, bare, { leaveRunning: false });
    await bjob.wait();
    const io = join(work, `io-pg-${rep}`);
    mkdirSync(io);
    writeFileSync(join(io, 'stdout'), '', { mode: 0o600 });
    writeFileSync(join(io, 'stderr'), '', { mode: 0o600 });
    const bareEpoch = Date.now() / 1000;
    const br = bareRestore(bare, io, { keep: true });
    const bareFirstTx = await untilFirstTx(br.pid, bareEpoch);
    if (br.pid > 1) process.kill(br.pid, 'SIGKILL');
    rows.push({
      processes: cp.processes,
      ckptMs: ckptWall,
      dumpMs: cp.dumpMs,
      frozenMs: cp.stats ? cp.stats.frozenTimeUs / 1000 : NaN,
      imageMB: cp.bytes / 1e6,
      bareDumpMs: bd.wall,
      bareFrozenMs: bd.frozen,
      bareImageMB: bd.bytes / 1e6,
      restartMs: restartWall,
      restartToFirstTxMs: firstTx,
      bareRestoreMs: br.wall,
      bareRestoreToFirstTxMs: bareFirstTx,
      tpsBefore: median(before),
      tpsAfter: median(after),
    });
  }
  const m = Object.fromEntries(Object.keys(rows[0]).map((k) => [k, median(rows.map((r) => r[k]))]));
  return { label: 'postgres', reps: REPS, median: m, rows };
}

try {
  if (process.argv.includes('--pg')) {
    if (!pgBin) throw new Error('PostgreSQL is not installed (Debian package postgresql)');
    const r = await measurePg();
    if (json) console.log(JSON.stringify(r, null, 2));
    else {
      const m = r.median;
      console.log(`PostgreSQL ${PG_CLIENTS} pgbench clients, median of ${REPS}: ${m.processes} processes, images ${m.imageMB.toFixed(1)} MB (bare ${m.bareImageMB.toFixed(1)} MB)`);
      console.log(`  checkpoint --term ${m.ckptMs.toFixed(0)} ms = CRIU dump ${m.dumpMs.toFixed(0)} ms (frozen ${m.frozenMs.toFixed(0)} ms) + commit | bare criu dump ${m.bareDumpMs.toFixed(0)} ms (frozen ${m.bareFrozenMs.toFixed(0)} ms)`);
      console.log(`  restart ${m.restartMs.toFixed(0)} ms, to first transaction ${m.restartToFirstTxMs.toFixed(0)} ms | bare criu restore ${m.bareRestoreMs.toFixed(0)} ms, to first transaction ${m.bareRestoreToFirstTxMs.toFixed(0)} ms`);
      console.log(`  pgbench tps: ${m.tpsBefore.toFixed(0)} before the checkpoint, ${m.tpsAfter.toFixed(0)} in the 2nd-4th s after the restore`);
      for (const row of r.rows) console.log(`  rep: ${JSON.stringify(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Math.round(v * 10) / 10])))}`);
    }
    process.exitCode = 0;
  } else {
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
  }
} finally {
  for (const job of started) job.kill();
  await Promise.all(started.map((job) => job.wait()));
  rmSync(work, { recursive: true, force: true });
  for (const d of pgDirs) rmSync(d, { recursive: true, force: true });
}

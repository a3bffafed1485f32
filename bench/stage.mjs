#!/usr/bin/env node
// --stage DIR: does node-local staging shorten the time a criu job across nodes is
// paused by a checkpoint (issue #12)? Two jobs run at once in the Slurm test cluster
// (test/slurm/cluster.ts), the same ring (bench/fixtures/slurm-ring.mjs, BENCH_MB of
// random bytes per rank) on the same nodes, one with --stage on each node's tmpfs
// (the cluster's `local`), one without; the store of both is on this machine's disk.
// Their checkpoints (then: continue) take turns, A B B A A B …, so both see the same load.
//   node bench/stage.mjs [--reps N] [--mb MB] [--nodes N] [--per-node K] [--disk-stage] [--json]
// --disk-stage: a third job staged on the same disk as the store (a directory of the
// cluster's, not a tmpfs): what the early release gains without a faster medium.
// Not a test: needs root, Slurm and CRIU; compile first (`npx tsc -p test/tsconfig.json`).
//
// Per checkpoint:
//   pause     the longest turn of the ring any rank saw around the checkpoint (BENCH gap
//             lines, BENCH_GAP_MS = 50): from its last message before the checkpoint held
//             its sends to its first after its links were back — the pause as the
//             program sees it, prepare and drain included
//   total     the control request 'checkpoint' until its reply (the snapshot committed)
//   dump      the slowest rank's own dump (data.dumpMs: CRIU writing its images, and
//             without --stage the fsync and checksum of them, data.syncMs)
//   copy      --stage: the nodes' copy into the store, fsynced and checksummed (data.stageCopyMs)
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const here = dirname(fileURLToPath(import.meta.url));
const now = () => {
  const p = performance.timeOrigin + performance.now();
  const d = Date.now();
  return Math.abs(p - d) > 2 ? d : p;
};

// ---- the in-cluster half: alternating checkpoints over two control connections --------

if (process.argv[2] === '--probe') {
  const o = JSON.parse(process.argv[3]);
  const { findJob } = await import('../dist/registry/jobs.js');
  const { connectControl } = await import('../dist/control/job-control.js');
  const channels = {};
  for (const name of o.names) channels[name] = await connectControl(findJob(name));
  const out = [];
  try {
    for (let i = 0; i < o.reps; i++) {
      // A B (C), then (C) B A: none always goes first.
      const order = i % 2 === 0 ? o.names : [...o.names].reverse();
      for (const name of order) {
        await sleep(300 + Math.random() * 200);
        const t0 = now();
        const reply = await channels[name].request({ type: 'request', op: 'checkpoint', crs: 'criu' }, 300_000, `checkpoint of ${name}`);
        const t1 = now();
        if (reply.ok !== true) throw new Error(`checkpoint of ${name} refused: ${String(reply.message)}`);
        const data = JSON.parse(readFileSync(join(String(reply.snapshot), 'manifest.json'), 'utf8')).data ?? {};
        out.push({ name, i, t0, t1, ms: t1 - t0, data });
      }
    }
    for (const name of o.names) await channels[name].request({ type: 'request', op: 'kill' }, 60_000, `kill of ${name}`).catch(() => {});
  } finally {
    for (const c of Object.values(channels)) c.close();
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

// ---- the outer half ------------------------------------------------------------------

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  const v = i > 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 1) {
    console.error(`bench/stage.mjs: ${name} takes a positive integer`);
    process.exit(2);
  }
  return v;
};
const REPS = arg('--reps', 8);
const MB = arg('--mb', 64);
const NODES = arg('--nodes', 2);
const PER_NODE = arg('--per-node', 2);
const JSON_OUT = process.argv.includes('--json');
const DISK_STAGE = process.argv.includes('--disk-stage');
const log = JSON_OUT ? (...a) => console.error(...a) : (...a) => console.log(...a);
const NODE = process.execPath;
const CKPT = join(here, '..', 'bin', 'ckpt');
const PROGRAM = join(here, 'fixtures', 'slurm-ring.mjs');

const { startCluster, needSlurm } = await import('../test-dist/slurm/cluster.js');
const { findCriu } = await import('../dist/criu/locate/find.js');
if (process.getuid?.() !== 0 || !needSlurm(undefined)) {
  console.error('bench/stage.mjs: needs root and Slurm (see docs/TESTING-SLURM.md)');
  process.exit(1);
}
try {
  await findCriu();
} catch {
  console.error('bench/stage.mjs: needs CRIU');
  process.exit(1);
}

let cluster;
const jobs = [];
async function teardown() {
  for (const j of jobs) if (j.child.exitCode === null) await j.kill('SIGKILL').catch(() => {});
  const c = cluster;
  cluster = undefined;
  if (c) await c.stop().catch((err) => console.error(`bench/stage.mjs: stopping the cluster: ${err.message}`));
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => void teardown().finally(() => process.exit(130)));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};
const max = (xs) => (xs.length ? Math.max(...xs) : NaN);
const f = (x) => (Number.isFinite(x) ? x.toFixed(0).padStart(6) : '     -');

try {
  cluster = await startCluster(undefined, { nodes: NODES, cpusPerNode: 3 * PER_NODE + 2, nodeLocalDirs: ['local'] });
  const stage = join(cluster.dir, 'local');
  const size = NODES * PER_NODE;
  const env = { CKPT_STATE_DIR: join(cluster.dir, 'ckpt-state'), BENCH_THINK_MS: '5', BENCH_GAP_MS: '50', BENCH_MB: String(MB) };
  const variants = [
    { name: 'plain', extra: [] },
    { name: 'staged', extra: ['--stage', stage] },
  ];
  if (DISK_STAGE) {
    mkdirSync(join(cluster.dir, 'disk-stage'), { mode: 0o700 });
    variants.push({ name: 'disk', extra: ['--stage', join(cluster.dir, 'disk-stage')] });
  }
  const gaps = new Map(variants.map((v) => [v.name, []]));
  for (const v of variants) {
    const args = ['-N', String(NODES), `--ntasks-per-node=${PER_NODE}`, NODE, CKPT, 'run', '-n', String(size), '--name', v.name, '--dir', join(cluster.dir, `store-${v.name}`), '--crs', 'criu', ...v.extra, '--', NODE, PROGRAM];
    const job = cluster.spawn('salloc', args, { env });
    jobs.push(job);
    let rest = '';
    let ready = 0;
    v.ready = new Promise((resolve, reject) => {
      job.child.stdout.on('data', (chunk) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop();
        for (const l of parts) {
          const g = / BENCH gap (\d+) ([\d.]+) ([\d.]+)$/.exec(l) ?? /^BENCH gap (\d+) ([\d.]+) ([\d.]+)$/.exec(l);
          if (g) gaps.get(v.name).push({ rank: Number(g[1]), ms: Number(g[2]), t: Number(g[3]) });
          if (/BENCH ready /.test(l) && ++ready === size) resolve();
        }
      });
      void job.exited.then((r) => reject(new Error(`${v.name} ended before its ranks were up: ${r.stderr.slice(-1500)}`)));
    });
  }
  await Promise.all(variants.map((v) => v.ready));
  log(`bench/stage.mjs: ${NODES} nodes × ${PER_NODE} ranks, ${MB} MiB per rank, ${REPS} checkpoints per job, alternating; stage ${stage} (tmpfs per node), stores on ${cluster.dir}`);
  // Inside the cluster (as bench/slurm-probe.mjs): its registry names pids of the cluster's pid namespace.
  const probeOut = await cluster.run(NODE, [fileURLToPath(import.meta.url), '--probe', JSON.stringify({ names: variants.map((v) => v.name), reps: REPS })], { env, timeoutMs: 1_800_000 });
  const line = String(probeOut.stdout).trim().split('\n').at(-1) ?? '';
  if (probeOut.code !== 0 || !line.startsWith('[')) throw new Error(`probe: exit ${probeOut.code}: ${String(probeOut.stderr).slice(-2000)}`);
  const cps = JSON.parse(line);
  await Promise.all(jobs.map((j) => Promise.race([j.exited, sleep(60_000)])));
  const rows = cps.map((c, i) => {
    // Its ranks' gaps that end after it began, and before the same job's next checkpoint
    // began (or 3 s after its reply: without --stage the ranks resume after the reply).
    const next = cps.slice(i + 1).find((x) => x.name === c.name);
    const mine = gaps.get(c.name).filter((g) => g.t >= c.t0 && g.t <= Math.min(c.t1 + 3000, next?.t0 ?? Infinity));
    const d = c.data;
    return {
      name: c.name,
      pause: max(mine.map((g) => g.ms)),
      total: c.ms,
      dump: max((d.dumpMs ?? []).filter(Number.isFinite)),
      sync: max((d.syncMs ?? []).filter(Number.isFinite)),
      copy: d.stageCopyMs ?? NaN,
      released: d.pauseMs ?? NaN,
    };
  });
  if (JSON_OUT) process.stdout.write(`${JSON.stringify({ nodes: NODES, perNode: PER_NODE, mb: MB, reps: REPS, checkpoints: rows })}\n`);
  log('\nvariant   ckpt  pause(ring)  total   dump  (sync)   copy  released(coord)   [ms]');
  for (const [i, row] of rows.entries()) log(`${row.name.padEnd(8)} ${String(i + 1).padStart(5)}  ${f(row.pause)}     ${f(row.total)} ${f(row.dump)} ${f(row.sync)} ${f(row.copy)}  ${f(row.released)}`);
  log('\nmedians   pause(ring)  total   dump  (sync)   copy  released(coord)');
  for (const v of variants) {
    const mine = rows.filter((x) => x.name === v.name);
    const m = (k) => median(mine.map((x) => x[k]).filter(Number.isFinite));
    log(`${v.name.padEnd(8)}  ${f(m('pause'))}       ${f(m('total'))} ${f(m('dump'))} ${f(m('sync'))} ${f(m('copy'))}  ${f(m('released'))}`);
  }
} finally {
  await teardown();
}

#!/usr/bin/env node
// Jobs across nodes: checkpoint latency and coordination overhead of a job on 1–3
// Slurm nodes × 2/4/8 ranks per node, self and criu, beside bare baselines measured
// in the same run; and restart on another node set.
//   node bench/slurm.mjs [--nodes 1,2,3] [--per-node 2,4,8] [--crs self,criu] [--reps N]
//                        [--criu-reps N] [--pings N] [--idle-pings N] [--srun-reps N] [--restarts N]
//                        [--think-ms MS] [--no-local] [--json]
// Not a test: needs root and Slurm (the test cluster of test/slurm/cluster.ts: a real
// slurmctld and one slurmd per "node", each node its own network namespace, all on
// this machine); compile it first with `npx tsc -p test/tsconfig.json`. CRIU for the
// criu part (skipped with a line, and exit status 1, without it).
// Goal (issue): coordination overhead ≤ 3 bare rounds, independent of ranks per node.
//
// Per cell (N nodes × K ranks per node, per checkpointer):
//   srun start   `srun -N N --ntasks-per-node=K node -e …` from the login host: until
//                the last bare rank runs (it prints its clock; median of --srun-reps)
//   ckpt start   `salloc -N N --ntasks-per-node=K ckpt run -n N·K -- node
//                bench/fixtures/slurm-ring.mjs`: until the last rank's init() returned
//   round        a bare request/reply round through the node agents to every rank:
//                control op 'ping-ranks' (one fanout per agent, each rank answers at
//                once), timed by bench/slurm-probe.mjs in one process inside the
//                cluster; 'agents': op 'ping-agents', the round to the agents only
//   idle round   the same round, started by the coordinator as long after the request as
//                the cell's median checkpoint takes, less that wait (--idle-pings of
//                them): on this VM an operation costs several times more after an idle
//                (bench/idle.mjs), and a checkpoint's last steps (the coordinator's, the
//                agents', the client reading the answer) run after such a wait
//   checkpoint   control op 'checkpoint' (then: continue) on the same connection
//   own          the slowest rank's own work (manifest data: self reachMs + saveMs,
//                its way to the target safe point and its save; criu dumpMs)
//   disk         the commit's wait on the disk (the reply's syncMs)
//   overhead     checkpoint − own − disk: what coordination adds, in rounds (the goal);
//                criu also with the slowest node's dumps side by side as own work (its
//                first rank's dump start to its last one's end: data.dumpEndAt, dumpMs);
//                also in idle rounds; rounds: the whole checkpoint in rounds; agent rounds: (checkpoint −
//                slowest save or dump) / agents, the figure of runs before 2026-12-07
//   phases       the coordinator's own timing of each phase (the reply's phasesMs)
//   parts        where the overhead goes, each beside a round's share: the caller's legs
//                (checkpoint − the phases; a round's: client − coord), the coordinator's
//                begin, the ranks' phases beyond their own work (a round's: coord), the
//                commit beyond its disk wait
//   local        (not with --no-local) the same N·K ranks and checkpoints with the local
//                launcher on the login host: what the nodes add to a checkpoint
// Restart: the N = 2, K = 4 job ends at a checkpoint (then: terminate); `salloc -N 3
// ckpt restart STORE` until every rank has rejoined (its restart hook printed its
// clock), beside a bare srun start of the same ranks on the 3 nodes.
// Every job and the whole cluster are killed on errors and Ctrl-C.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startCluster, needSlurm } from '../test-dist/slurm/cluster.js';
import { findCriu } from '../dist/criu/locate/find.js';
import { printCells, printRestarts, summarizeCell } from './slurm-report.mjs';

// ---- arguments ---------------------------------------------------------------------

function argValue(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}
function usage(message) {
  console.error(`bench/slurm.mjs: ${message}`);
  process.exit(2);
}
function intList(name, fallback, maxValue) {
  return (argValue(name) ?? fallback).split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1 || n > maxValue) usage(`${name}: '${s}' is not a count 1–${maxValue}`);
    return n;
  });
}
function count(name, fallback) {
  const v = argValue(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) usage(`${name}: '${v}' is not a non-negative integer`);
  return n;
}
const NODES = intList('--nodes', '1,2,3', 8);
const PER_NODE = intList('--per-node', '2,4,8', 32);
const CRS = (argValue('--crs') ?? 'self,criu').split(',');
for (const c of CRS) if (c !== 'self' && c !== 'criu') usage(`--crs: 'self' or 'criu', not '${c}'`);
const REPS = count('--reps', 7);
const CRIU_REPS = count('--criu-reps', 3);
const PINGS = count('--pings', 15);
const IDLE_PINGS = count('--idle-pings', 5);
const SRUN_REPS = count('--srun-reps', 3);
const RESTARTS = count('--restarts', 3);
const THINK_MS = count('--think-ms', 5);
const LOCAL = !process.argv.includes('--no-local');
const JSON_OUT = process.argv.includes('--json');
const log = JSON_OUT ? (...a) => console.error(...a) : (...a) => console.log(...a);

const here = dirname(fileURLToPath(import.meta.url));
const CKPT = join(here, '..', 'bin', 'ckpt');
const PROGRAM = join(here, 'fixtures', 'slurm-ring.mjs');
const PROBE = join(here, 'slurm-probe.mjs');
const NODE = process.execPath;
/** The restart: the job of this cell ends at a checkpoint and restarts on RESTART_NODES nodes. */
const RESTART_FROM = { n: 2, k: 4 };
const RESTART_NODES = 3;
const WAIT_MS = 180_000;
const execFileP = promisify(execFile);

/** Wall clock in ms, sub-ms where it agrees with Date.now() (the ranks read the same). */
const now = () => {
  const p = performance.timeOrigin + performance.now();
  const d = Date.now();
  return Math.abs(p - d) > 2 ? d : p;
};

// ---- the cluster and clean-up --------------------------------------------------------

let cluster;
let stateDir;
/** Jobs started on this host (the local-launcher comparison): ended with the run. */
const hostChildren = new Set();
async function teardown() {
  for (const child of hostChildren) child.kill('SIGKILL');
  const c = cluster;
  cluster = undefined;
  if (c) await c.stop().catch((err) => console.error(`bench/slurm.mjs: stopping the cluster: ${err.message}`));
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`bench/slurm.mjs: ${sig}: stopping every job and the cluster`);
    void teardown().finally(() => process.exit(130));
  });
}

/** The cluster's own registry (CKPT_STATE_DIR), so nothing of this run meets the user's. */
const env = (extra = {}) => ({ CKPT_STATE_DIR: stateDir, BENCH_THINK_MS: String(THINK_MS), ...extra });

/** Until no job is left in the queue: each start is timed on idle nodes, not behind the last job's release. */
async function waitIdle() {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const out = await cluster.check('squeue', ['-h', '-o', '%i']);
    if (!out.trim()) return;
    if (Date.now() > deadline) throw new Error(`jobs still queued after 60 s: ${out.trim()}`);
    await sleep(100);
  }
}

/** Calls onLine for each complete stdout line of a cluster process. */
function onLines(proc, onLine) {
  let rest = '';
  proc.child.stdout.on('data', (chunk) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop();
    for (const l of parts) onLine(l);
  });
}

/** Resolves with the timestamps of `count` `BENCH <kind>` lines of `proc`; fails if it ends first. */
function benchStamps(proc, kind, count, what) {
  const stamps = new Map();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}:\n${proc.stdout().slice(-2000)}\n${proc.stderr().slice(-2000)}`)), WAIT_MS);
    onLines(proc, (line) => {
      const m = new RegExp(`BENCH ${kind} (\\d+) ([\\d.]+)`).exec(line);
      if (!m) return;
      stamps.set(Number(m[1]), Number(m[2]));
      if (stamps.size === count) {
        clearTimeout(timer);
        resolve([...stamps.values()]);
      }
    });
    void proc.exited.then((r) => {
      clearTimeout(timer);
      if (stamps.size < count) reject(new Error(`${what}: the job ended (${r.code ?? r.signal}) first:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`));
    });
  });
}

// ---- measurements ----------------------------------------------------------------------

/** A bare srun of N·K `node` processes: ms until the last one runs, and until srun returned. */
async function srunStart(n, k) {
  await waitIdle();
  const t0 = now();
  const r = await cluster.run('srun', ['-N', String(n), `--ntasks-per-node=${k}`, NODE, '-e', 'console.log("BENCH start " + (performance.timeOrigin + performance.now()))'], { timeoutMs: WAIT_MS });
  const t1 = now();
  const stamps = [...r.stdout.matchAll(/BENCH start ([\d.]+)/g)].map((m) => Number(m[1]));
  if (r.code !== 0 || stamps.length !== n * k) throw new Error(`srun -N ${n} --ntasks-per-node=${k}: exit ${r.code ?? r.signal}, ${stamps.length} of ${n * k} started: ${r.stderr.trim()}`);
  return { start: Math.max(...stamps) - t0, total: t1 - t0 };
}

/** Runs the probe inside the cluster (see bench/slurm-probe.mjs) and returns its JSON. */
async function probe(config) {
  const r = await cluster.run(NODE, [PROBE, JSON.stringify(config)], { env: env(), timeoutMs: 900_000 });
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.code !== 0 || !line.startsWith('{')) throw new Error(`probe of ${config.name}: exit ${r.code ?? r.signal}: ${r.stderr.trim()}${keepLogs()}`);
  return JSON.parse(line);
}

/** The logs ckpt kept in the cluster's registry (a failed CRIU dump's), copied out of it: it goes with the cluster. */
function keepLogs() {
  const from = join(stateDir, 'logs');
  if (!existsSync(from)) return '';
  const to = mkdtempSync(join(tmpdir(), 'ckpt-bench-logs-'));
  cpSync(from, to, { recursive: true });
  return `\n(ckpt's logs of the run kept in ${to})`;
}

/** The promise's value, or undefined after `ms` (the timer does not outlive it). */
async function within(promise, ms) {
  let timer;
  try {
    return await Promise.race([promise, new Promise((r) => (timer = setTimeout(r, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits for a job's salloc to return after it was ended (it is killed when it does not). */
async function ended(proc, what) {
  const r = await within(proc.exited, 60_000);
  if (r) return r;
  console.error(`bench/slurm.mjs: ${what} did not end within 60 s: killed`);
  return proc.kill('SIGKILL');
}

async function measureCell(n, k, crs, work) {
  const size = n * k;
  const name = `bench-${crs}-${n}x${k}`;
  const store = join(work, name);
  const srun = [];
  for (let i = 0; i < SRUN_REPS; i++) srun.push(await srunStart(n, k));

  await waitIdle();
  const t0 = now();
  const job = cluster.spawn('salloc', ['-N', String(n), `--ntasks-per-node=${k}`, NODE, CKPT, 'run', '-n', String(size), '--name', name, '--dir', store, '--crs', crs, '--', NODE, PROGRAM], { env: env() });
  let result;
  try {
    const ready = await benchStamps(job, 'ready', size, `${size} ranks of ${name} to start`);
    const start = Math.max(...ready) - t0;
    const restartHere = n === RESTART_FROM.n && k === RESTART_FROM.k;
    const reps = crs === 'self' ? REPS : CRIU_REPS;
    const p = await probe({ name, crs, pings: PINGS, idlePings: IDLE_PINGS, warmup: crs === 'self' ? 1 : 0, checkpoints: reps, end: restartHere ? 'terminate' : 'kill' });
    result = { n, k, crs, size, srun, start, pings: p.pings, rankPings: p.rankPings, idleMs: p.idleMs, idleRankPings: p.idleRankPings, checkpoints: p.checkpoints };
    const exit = await ended(job, name);
    if (LOCAL) result.local = await localCheckpoints(size, crs, work);
    if (restartHere) {
      if (exit.code !== 85) throw new Error(`${name} ended with ${exit.code ?? exit.signal}, not at its checkpoint (85):\n${exit.stderr.slice(-2000)}`);
      result.restart = await measureRestarts(name, size, store);
    }
  } finally {
    // Bounded: salloc killed leaves `ckpt run` (its child) holding its output open; the teardown ends it.
    if (job.child.exitCode === null) await within(job.kill('SIGKILL'), 10_000);
  }
  rmSync(store, { recursive: true, force: true });
  return result;
}

/**
 * The same ranks and checkpoints with the local launcher, on this host outside the
 * cluster (CRIU cannot dump a process whose cwd is in the cluster's private mount
 * namespace), with a registry of its own: no agents, unix sockets.
 */
async function localCheckpoints(size, crs, work) {
  const name = `bench-local-${crs}-${size}`;
  const store = join(work, name);
  const localEnv = { ...process.env, CKPT_STATE_DIR: join(stateDir, '..', 'ckpt-state-host'), BENCH_THINK_MS: String(THINK_MS) };
  const child = spawn(NODE, [CKPT, 'run', '--launcher', 'local', '-n', String(size), '--name', name, '--dir', store, '--crs', crs, '--', NODE, PROGRAM], { env: localEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  hostChildren.add(child);
  child.on('close', () => hostChildren.delete(child));
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  const proc = { child, exited, stdout: () => stdout, stderr: () => stderr };
  try {
    await benchStamps(proc, 'ready', size, `${size} local ranks to start`);
    const config = { name, crs, pings: 0, warmup: crs === 'self' ? 1 : 0, checkpoints: crs === 'self' ? REPS : CRIU_REPS, end: 'kill' };
    const r = await execFileP(NODE, [PROBE, JSON.stringify(config)], { env: localEnv, timeout: 900_000 }).catch((err) => err);
    const line = String(r.stdout ?? '').trim().split('\n').at(-1) ?? '';
    if (r instanceof Error || !line.startsWith('{')) throw new Error(`probe of ${name}: ${r.message ?? ''} ${String(r.stderr ?? '').trim()}`);
    await within(exited, 60_000);
    return JSON.parse(line).checkpoints;
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(store, { recursive: true, force: true });
  }
}

/** `salloc -N RESTART_NODES ckpt restart STORE` until every rank has rejoined, RESTARTS times; a bare srun of the same shape beside each. */
async function measureRestarts(name, size, store) {
  const perNode = Math.ceil(size / RESTART_NODES);
  const out = { nodes: RESTART_NODES, perNode, times: [], srun: [] };
  for (let i = 0; i < RESTARTS; i++) {
    out.srun.push(await srunStart(RESTART_NODES, perNode));
    await waitIdle();
    const t0 = now();
    const job = cluster.spawn('salloc', ['-N', String(RESTART_NODES), `--ntasks-per-node=${perNode}`, NODE, CKPT, 'restart', store], { env: env() });
    try {
      const back = await benchStamps(job, 'rejoined', size, `${size} ranks of ${name} to rejoin after restart ${i + 1}`);
      out.times.push(Math.max(...back) - t0);
      await probe({ name, end: 'kill' });
      await ended(job, `restarted ${name}`);
    } finally {
      if (job.child.exitCode === null) await within(job.kill('SIGKILL'), 10_000);
    }
  }
  return out;
}

// ---- main ----------------------------------------------------------------------------------

async function preconditions() {
  let reason;
  if (!needSlurm({ skip: (m) => (reason = m) })) {
    console.error(`bench/slurm.mjs: needs Slurm and root: ${reason}`);
    process.exit(1);
  }
  if (!CRS.includes('criu')) return { crs: CRS };
  try {
    await findCriu();
    return { crs: CRS };
  } catch (err) {
    const why = `criu: skipped — CRIU is not usable here: ${err.message.split('\n')[0]}`;
    log(why);
    return { crs: CRS.filter((c) => c !== 'criu'), skipped: why };
  }
}

async function main() {
  const started = now();
  const pre = await preconditions();
  const report = { date: new Date().toISOString(), node: process.version, cpus: cpus().length, loadavg: loadavg().map((x) => +x.toFixed(2)), thinkMs: THINK_MS, cells: [], skipped: pre.skipped };
  log(`jobs across nodes: nodes ${NODES.join(',')} × ranks/node ${PER_NODE.join(',')}; ${pre.crs.map((c) => `${c} ${c === 'self' ? `${REPS} (+1 warm-up)` : CRIU_REPS} checkpoints`).join(', ')} per cell; ${PINGS} pings (+1 per checkpoint); ${SRUN_REPS} bare sruns; ${RESTARTS} restarts; think ${THINK_MS} ms; ${report.cpus} CPUs, load average ${report.loadavg.join(' ')}`);
  cluster = await startCluster(undefined, { nodes: Math.max(...NODES, RESTART_NODES), cpusPerNode: Math.max(...PER_NODE, 4) });
  log(`cluster of ${cluster.nodes.length} nodes up in ${cluster.timings.startMs} ms`);
  stateDir = join(cluster.dir, 'ckpt-state');
  const work = join(cluster.dir, 'stores');
  mkdirSync(work, { recursive: true });
  for (const crs of pre.crs) {
    const cells = [];
    for (const n of NODES) {
      for (const k of PER_NODE) {
        const t = now();
        const cell = await measureCell(n, k, crs, work);
        cells.push(cell);
        const s = summarizeCell(cell);
        log(`  ${crs} ${n}×${k}: checkpoint ${s.ckpt.toFixed(1)} ms, round ${s.rankPing.toFixed(2)} ms, overhead ${s.overheadRounds.toFixed(2)} rounds; start ${s.ckptStart.toFixed(0)} vs srun ${s.srunStart.toFixed(0)} ms (${((now() - t) / 1000).toFixed(0)} s)`);
      }
    }
    report.cells.push(...cells);
    printCells(log, crs, cells);
    printRestarts(log, crs, cells);
  }
  if (pre.skipped) log(`\n${pre.skipped}`);
  log(`\n(${((now() - started) / 1000).toFixed(0)} s; load average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')})`);
  if (JSON_OUT) console.log(JSON.stringify(report));
  if (pre.skipped) process.exitCode = 1;
}

try {
  await main();
} catch (err) {
  console.error(`bench/slurm.mjs: ${err.stack ?? err}`);
  process.exitCode = 1;
} finally {
  await teardown();
}

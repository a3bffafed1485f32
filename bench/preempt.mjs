#!/usr/bin/env node
// Preemption benchmark (issue 13): for a 4-rank job, self and criu, as a batch system
// sees it — whole commands, wall clock:
//   signal→stopped   SIGUSR1 to `ckpt run --checkpoint-signal USR1` until it has
//                    exited 85 with a committed snapshot
//   resume→progress  the requeued line, `ckpt run --resume …`, started until a
//                    restarted rank has received its first message
// beside the same job checkpointed and restarted the plain way, in the same run:
//   term             `ckpt checkpoint JOB --term` until `ckpt run` has exited
//   restart          `ckpt restart STORE` until the first message after the restart
//   node             `node -e 0`: a process start, the floor of any resume
//   node bench/preempt.mjs [--reps N] [--crs self,criu] [--json]
// Not a test: figures depend on the machine. Medians over the repetitions; ratios
// signal→stopped / term and resume / restart.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ckpt = join(root, 'bin', 'ckpt');
const ring = join(root, 'bench', 'fixtures', 'ring.mjs');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const reps = Number(arg('--reps', '3'));
const crsList = arg('--crs', 'self,criu').split(',');
if (!Number.isInteger(reps) || reps < 1 || crsList.some((c) => c !== 'self' && c !== 'criu')) {
  console.error('bench/preempt.mjs: usage: [--reps N] [--crs self,criu] [--json]');
  process.exit(2);
}
const json = process.argv.includes('--json');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = () => performance.now();

/** Starts `ckpt ARGS`; resolves `lines` as they come on stderr (rank output goes there with BENCH). */
function start(args, env = {}) {
  const child = spawn(process.execPath, [ckpt, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const waiters = [];
  let text = '';
  child.stderr.setEncoding('utf8').on('data', (d) => {
    text += d;
    for (const w of [...waiters]) if (w.re.test(text)) waiters.splice(waiters.indexOf(w), 1) && w.resolve(now());
  });
  const exited = new Promise((resolve) => child.on('close', (code) => resolve({ code, at: now() })));
  const waitFor = (re) =>
    new Promise((resolve, reject) => {
      if (re.test(text)) return resolve(now());
      waiters.push({ re, resolve });
      exited.then(() => reject(new Error(`exited before ${re}: ${text.slice(-400)}`)));
    });
  return { child, exited, waitFor, text: () => text };
}

/** The job is running with every rank (polled through `ckpt ps`). */
async function running(name) {
  for (;;) {
    const r = spawnSync(process.execPath, [ckpt, 'ps', '--json'], { encoding: 'utf8' });
    const job = JSON.parse(r.stdout || '[]').find?.((j) => j.name === name) ?? (JSON.parse(r.stdout || '{}').jobs ?? []).find((j) => j.name === name);
    if (job && job.state === 'running' && job.pids.every((p) => p > 1)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const FIRST = /BENCH \{"k":"first-recv"/;

async function once(crs, mode) {
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-preempt-'));
  const store = join(dir, 'store');
  const name = `preempt-${crs}-${process.pid}`;
  const line = ['run', '-n', '4', '--name', name, '--dir', store, '--crs', crs, '--resume', '--checkpoint-signal', 'USR1', '--', process.execPath, ring];
  const env = { BENCH_THINK_MS: '1' };
  try {
    const job = start(line, env);
    await running(name);
    let stopped;
    if (mode === 'signal') {
      const t0 = now();
      job.child.kill('SIGUSR1');
      const { code, at } = await job.exited;
      if (code !== 85) throw new Error(`ckpt run exited ${code}, not 85: ${job.text().slice(-400)}`);
      stopped = at - t0;
    } else {
      const t0 = now();
      const r = spawnSync(process.execPath, [ckpt, 'checkpoint', name, '--term'], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`checkpoint --term: ${r.stderr}`);
      const { at } = await job.exited;
      stopped = at - t0;
    }
    const t1 = now();
    const again = mode === 'signal' ? start(line, env) : start(['restart', store], env);
    const first = await again.waitFor(FIRST);
    again.child.kill('SIGTERM');
    await again.exited;
    return { stopped, resumed: first - t1 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function nodeStart() {
  const t0 = now();
  spawnSync(process.execPath, ['-e', '0']);
  return now() - t0;
}

const results = {};
for (const crs of crsList) {
  const r = { signal: [], term: [], resume: [], restart: [], node: [] };
  for (let i = 0; i < reps; i++) {
    // Interleaved: both ways under the same load.
    const s = await once(crs, 'signal');
    const p = await once(crs, 'plain');
    r.signal.push(s.stopped);
    r.resume.push(s.resumed);
    r.term.push(p.stopped);
    r.restart.push(p.resumed);
    r.node.push(nodeStart());
  }
  results[crs] = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, median(v)]));
}

if (json) console.log(JSON.stringify({ reps, results }, null, 2));
else {
  const f = (x) => `${x.toFixed(0).padStart(6)} ms`;
  console.log(`4 ranks, medians of ${reps}`);
  console.log('crs    signal→stopped   term   ratio   resume→progress  restart  ratio   node -e 0');
  for (const [crs, m] of Object.entries(results)) {
    console.log(
      `${crs.padEnd(5)} ${f(m.signal)}  ${f(m.term)}  ${(m.signal / m.term).toFixed(2)}x   ${f(m.resume)}  ${f(m.restart)}  ${(m.resume / m.restart).toFixed(2)}x  ${f(m.node)}`,
    );
  }
}

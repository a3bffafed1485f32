// Jobs across nodes given bad input or hit by faults (test/slurm/cluster.ts): each
// ends `ckpt run` with one line that says what is wrong — no allocation, no srun, too
// many nodes, node agents that cannot start, a store the nodes do not share — and
// leaves nothing running; `ckpt kill` ends a job on every node; ps shows a cyclic
// placement. Real Slurm, real processes.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ckptBin, eventually, privateStateDir, type Result } from '../helpers.js';
import { program } from '../jobs/exchange.js';
import { needSlurm, startCluster, type SlurmCluster } from './cluster.js';

before(() => privateStateDir());

/** `ckpt ARGS` on this host with no Slurm variable in its environment. */
function ckptOutside(args: string[]): Promise<Result> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(SLURM|SBATCH|SALLOC)_/.test(k)));
  const child = spawn(process.execPath, [ckptBin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

/** ckpt's own stderr lines under salloc (salloc's `salloc: …` lines left out). */
const ckptLines = (stderr: string): string[] => stderr.split('\n').filter((l) => l.trim() && !l.startsWith('salloc: '));

/** Exactly one line, ckpt's, no stack trace; returns it. */
function oneLine(stderr: string): string {
  const lines = ckptLines(stderr);
  assert.equal(lines.length, 1, `one line:\n${stderr}`);
  assert.match(lines[0]!, /^ckpt( [a-z]+){0,2}: .* \[ECKPT_\w+\]$/, stderr);
  assert.doesNotMatch(stderr, /^\s+at /m, 'no stack trace');
  return lines[0]!;
}

interface Proc {
  pid: number;
  argv: string[];
  env: Map<string, string>;
}

/** The live processes of this cluster (its SLURM_CONF in their environment; a zombie's is empty). */
function clusterProcesses(cluster: SlurmCluster): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!(pid > 1) || pid === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
      const env = new Map(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as const));
      if (env.get('SLURM_CONF') === cluster.conf) out.push({ pid, argv, env });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

// The agent's file in either build: the bundle (dist/bundle/agent/main.cjs, run by bin/ckpt) or tsc's output (main.js).
const isAgent = (arg: string | undefined): boolean => /\/agent\/main\.c?js$/.test(arg ?? '');
/** The node agents themselves (node AGENT; not their unshare or srun). */
const agents = (cluster: SlurmCluster): Proc[] => clusterProcesses(cluster).filter((p) => isAgent(scriptOf(p)));
/** What node runs: its first argument that is not one of node's options (an agent's has `--inspect-publish-uid`). */
const scriptOf = (p: Proc): string | undefined => p.argv.slice(1).find((a) => !a.startsWith('--'));
/** The ranks (node PROGRAM). */
const ranks = (cluster: SlurmCluster, rankProgram = program): Proc[] => clusterProcesses(cluster).filter((p) => p.argv[1] === rankProgram);
/** Anything that names the agent or the rank program: agents, their unshare and srun, ranks, ckpt run, salloc. */
const jobProcesses = (cluster: SlurmCluster, rankProgram = program): string[] =>
  clusterProcesses(cluster)
    .filter((p) => p.argv.some((a) => isAgent(a) || a === rankProgram))
    .map((p) => `${p.pid}: ${p.argv.join(' ')}`);

/** Nothing of the job is left (a killed process may take the kernel a moment to reap). */
async function assertNothingLeft(cluster: SlurmCluster, rankProgram?: string): Promise<void> {
  if (await eventually(() => jobProcesses(cluster, rankProgram).length === 0, 10_000, 50)) return;
  assert.fail(`left running:\n${jobProcesses(cluster, rankProgram).join('\n')}`);
}

/** Waits until `n` ranks printed that they wait at the gate (or the job ended: then fails). */
async function gated(p: { stdout: () => string; stderr: () => string; exited: Promise<unknown> }, n: number, timeoutMs = 120_000): Promise<void> {
  let ended = false;
  void p.exited.then(() => (ended = true));
  const ok = await eventually(() => ended || (p.stdout().match(/ gated /g) ?? []).length >= n, timeoutMs, 100);
  if (!ok || ended) throw new Error(`${ended ? 'the job ended' : 'timed out'} before ${n} ranks were at the gate:\n${p.stdout()}\n${p.stderr()}`);
}

test('outside an allocation: --launcher slurm is one line, NO_ALLOCATION; -N with --launcher local is a usage error', async () => {
  const r = await ckptOutside(['run', '--launcher', 'slurm', '-n', '2', '--', process.execPath, '-e', '0']);
  assert.notEqual(r.code, 0);
  assert.match(oneLine(r.stderr), /needs a Slurm allocation.*\[ECKPT_NO_ALLOCATION\]$/);
  const local = await ckptOutside(['run', '--launcher', 'local', '-N', '2', '-n', '2', '--', process.execPath, '-e', '0']);
  assert.equal(local.code, 2);
  assert.match(oneLine(local.stderr), /-N .*needs --launcher slurm \[ECKPT_USAGE\]$/);
  const cyclic = await ckptOutside(['run', '--distribution', 'cyclic', '-n', '2', '--', process.execPath, '-e', '0']);
  assert.equal(cyclic.code, 2);
  assert.match(oneLine(cyclic.stderr), /--distribution .*needs --launcher slurm \[ECKPT_USAGE\]$/);
});

test('inside an allocation: no srun in PATH, or -N beyond the allocation, is one clear line; no agent starts', async (t) => {
  if (!needSlurm(t)) return;
  const cluster = await startCluster(t, { nodes: 2 });
  // A PATH with node and nothing else (srun lives in /usr/bin, with env and the rest).
  const bin = mkdtempSync(join(tmpdir(), 'ckpt-nosrun-'));
  t.after(() => rmSync(bin, { recursive: true, force: true }));
  symlinkSync(process.execPath, join(bin, 'node'));
  const noSrun = await cluster.run('salloc', ['-N', '2', '/usr/bin/env', `PATH=${bin}`, process.execPath, ckptBin, 'run', '-n', '2', '--', process.execPath, '-e', '0']);
  assert.notEqual(noSrun.code, 0);
  assert.match(oneLine(noSrun.stderr), /needs srun, and it is not in PATH \[ECKPT_NO_ALLOCATION\]$/);
  const tooMany = await cluster.run('salloc', ['-N', '2', process.execPath, ckptBin, 'run', '-N', '3', '-n', '3', '--', process.execPath, '-e', '0']);
  assert.equal(tooMany.code, 2, tooMany.stderr);
  assert.match(oneLine(tooMany.stderr), /^ckpt run: -N 3: the allocation has 2 nodes \[ECKPT_USAGE\]$/);
  const badDistribution = await cluster.run('salloc', ['-N', '2', process.execPath, ckptBin, 'run', '--distribution', 'plane', '-n', '2', '--', process.execPath, '-e', '0']);
  assert.equal(badDistribution.code, 2);
  assert.match(oneLine(badDistribution.stderr), /--distribution is block or cyclic, not 'plane' \[ECKPT_USAGE\]$/);
  assert.deepEqual(jobProcesses(cluster), []);
});

test("node agents that cannot start: srun ends, and ckpt run fails with one line carrying the agent's reason; nothing left", async (t) => {
  if (!needSlurm(t)) return;
  const cluster = await startCluster(t, { nodes: 2 });
  // br0 is the login host's bridge (so the coordinator binds there); the nodes have
  // only eth0, so each agent fails at once on `--bind br0`.
  const marks = join(cluster.dir, 'started');
  const rank = `require('fs').writeFileSync('${marks}-' + process.env.CKPT_RANK, '')`;
  const r = await cluster.run('salloc', ['-N', '2', process.execPath, ckptBin, 'run', '--bind', 'br0', '-n', '2', '--', process.execPath, '-e', rank], { timeoutMs: 120_000 });
  assert.notEqual(r.code, 0);
  const line = oneLine(r.stderr);
  assert.match(line, /^ckpt: the node agents could not start: srun ended \(status \d+\): /);
  assert.match(line, /ckpt agent: --bind br0: neither an address nor an interface of n[12] \[ECKPT_USAGE\]/, 'the agent\'s own reason');
  assert.match(line, /\[ECKPT_NODE_LOST\]$/);
  assert.ok(!existsSync(`${marks}-0`) && !existsSync(`${marks}-1`), 'no rank started');
  await assertNothingLeft(cluster);
});

test('a store that is not on shared storage: refused before any rank starts, naming the nodes that cannot see it', async (t) => {
  if (!needSlurm(t)) return;
  // DIR/local is a tmpfs of its own on n1 and on n2; the login host has the plain directory.
  const cluster = await startCluster(t, { nodes: 2, nodeLocalDirs: ['local'] });
  const store = join(cluster.dir, 'local', 'store');
  const marks = join(cluster.dir, 'started');
  const rank = `require('fs').writeFileSync('${marks}-' + process.env.CKPT_RANK, '')`;
  const r = await cluster.run('salloc', ['-N', '2', process.execPath, ckptBin, 'run', '--dir', store, '-n', '2', '--', process.execPath, '-e', rank], { timeoutMs: 120_000 });
  assert.notEqual(r.code, 0);
  const line = oneLine(r.stderr);
  assert.match(line, new RegExp(`^ckpt: the snapshot store ${store} is not shared storage: `));
  assert.match(line, /node n1 does not see it \(ENOENT\)/);
  assert.match(line, /node n2 does not see it \(ENOENT\)/);
  assert.match(line, /\[ECKPT_STORE_NOT_SHARED\]$/);
  assert.ok(!existsSync(`${marks}-0`) && !existsSync(`${marks}-1`), 'no rank started');
  assert.deepEqual(readdirSync(store), [], 'the probe is removed');
  await assertNothingLeft(cluster);
  // The same job with the store in the shared directory runs.
  const shared = await cluster.run('salloc', ['-N', '2', process.execPath, ckptBin, 'run', '--dir', join(cluster.dir, 'store'), '-n', '2', '--', process.execPath, '-e', rank], { timeoutMs: 120_000 });
  assert.equal(shared.code, 0, shared.stderr);
  assert.ok(existsSync(`${marks}-0`) && existsSync(`${marks}-1`), 'both ranks ran');
});

test('ckpt kill of a job on 2 nodes: ckpt run exits non-zero, and no agent and no rank is left', async (t) => {
  if (!needSlurm(t)) return;
  const cluster = await startCluster(t, { nodes: 2 });
  const env = { ITERS: '50', GATE_AT: '10', GATE_FILE: join(cluster.dir, 'never') };
  const job = cluster.spawn('salloc', ['-N', '2', '--ntasks-per-node=2', process.execPath, ckptBin, 'run', '-n', '4', '--name', 'kill-me', '--', process.execPath, program], { env });
  await gated(job, 4);
  assert.deepEqual(ranks(cluster).map((p) => p.env.get('SLURMD_NODENAME')).sort(), ['n1', 'n1', 'n2', 'n2'], 'four ranks run, two a node');
  assert.deepEqual(agents(cluster).map((p) => p.env.get('SLURMD_NODENAME')).sort(), ['n1', 'n2'], 'an agent a node');
  const killed = await cluster.check(process.execPath, [ckptBin, 'kill', 'kill-me']);
  assert.match(killed, /ending job \w+ \(4 ranks\)/);
  const ended = await job.exited;
  assert.notEqual(ended.code, 0, ended.stderr);
  assert.match(oneLine(ended.stderr), /^ckpt: job \w+ killed by ckpt kill \[ECKPT_JOB_ABORTED\]$/);
  await assertNothingLeft(cluster);
});

test('ckpt ps --json of a job on 3 nodes with --distribution cyclic: ranks on n1, n2, n3, n1, n2, n3', async (t) => {
  if (!needSlurm(t)) return;
  const cluster = await startCluster(t, { nodes: 3 });
  const gate = join(cluster.dir, 'gate');
  const env = { ITERS: '20', GATE_AT: '10', GATE_FILE: gate };
  const job = cluster.spawn('salloc', ['-N', '3', '--ntasks-per-node=2', process.execPath, ckptBin, 'run', '-n', '6', '--distribution', 'cyclic', '--name', 'cyclic', '--', process.execPath, program], { env });
  await gated(job, 6);
  const ps = JSON.parse(await cluster.check(process.execPath, [ckptBin, 'ps', '--json'])).jobs as { name: string; ranks: { rank?: number; node?: string }[] }[];
  const listed = ps.find((j) => j.name === 'cyclic');
  assert.ok(listed, JSON.stringify(ps));
  assert.deepEqual(listed.ranks.map((r) => r.node), ['n1', 'n2', 'n3', 'n1', 'n2', 'n3']);
  // Each rank runs where ps says (its agent's node, in its environment).
  const where = ranks(cluster).map((p) => [Number(p.env.get('CKPT_RANK')), p.env.get('SLURMD_NODENAME')] as const).sort((a, b) => a[0] - b[0]);
  assert.deepEqual(where, [[0, 'n1'], [1, 'n2'], [2, 'n3'], [3, 'n1'], [4, 'n2'], [5, 'n3']]);
  // The bare rounds bench/slurm.mjs measures checkpoints in: to the 3 agents, and through them to the 6 ranks.
  const dist = (m: string) => JSON.stringify(join(ckptBin, '..', '..', 'dist', m));
  const pings = `import { findJob } from ${dist('registry/jobs.js')}; import { controlRequest } from ${dist('control/job-control.js')};
    const j = findJob('cyclic'); const a = await controlRequest(j, 'ping-agents'); const r = await controlRequest(j, 'ping-ranks');
    console.log(JSON.stringify([a.ms, r.ms]));`;
  const [agentsMs, ranksMs] = JSON.parse(await cluster.check(process.execPath, ['--input-type=module', '-e', pings])) as number[];
  assert.ok(agentsMs! >= 0 && ranksMs! >= 0, `${agentsMs} ${ranksMs}`);
  writeFileSync(gate, '');
  const ended = await job.exited;
  assert.equal(ended.code, 0, ended.stderr);
  assert.equal((ended.stdout.match(/rank \d+ checksum/g) ?? []).length, 6, ended.stdout);
});

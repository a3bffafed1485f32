// --stage DIR across the nodes of a real Slurm (test/slurm/cluster.ts), real CRIU: each
// node has a tmpfs of its own at the cluster's `local` (nodeLocalDirs); the ranks dump
// there, the job goes on, the node agents copy the images into the shared store and
// the coordinator commits. Checksums exact against an uninterrupted run; a failed copy
// (the `staged` fault point, in a node's agent) fails that checkpoint only.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ckptBin, faultEnv, gate, needCriu } from '../helpers.js';
import { program } from '../jobs/exchange.js';
import { needSlurm, startCluster } from './cluster.js';
import { agentPids, checksums, gated, ITERS, uninterrupted } from './ring.js';

const alloc = ['-N', '2', '--ntasks-per-node=2', process.execPath, ckptBin];

/** What is left under the stage directory as node `node`'s agent sees it (its own mount namespace). */
function staged(node: string, stage: string): string[] {
  const pid = agentPids(node).at(-1);
  assert.ok(pid, `${node} has an agent`);
  return readdirSync(`/proc/${pid}/root${stage}`);
}

/** The host pid of this cluster's slurmd of `node`: its mount namespace holds the node's own stage directory. */
function slurmdPid(conf: string, node: string): number {
  for (const name of readdirSync('/proc')) {
    try {
      const args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (args[0]?.endsWith('slurmd') && args.includes(node) && args.includes(conf)) return Number(name);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no slurmd for ${node}`);
}

/** The relay directories (in /tmp) of an agent, as named by their `writer`'s pid namespace. */
function relayDirsOf(agentPid: number): string[] {
  const ns = /^pid:\[(\d+)\]$/.exec(readlinkSync(`/proc/${agentPid}/ns/pid`))![1];
  return readdirSync('/tmp')
    .filter((n) => n.startsWith('ckpt-agent-'))
    .filter((n) => {
      try {
        return readFileSync(join('/tmp', n, 'writer'), 'utf8').split('@')[0]!.split('.')[2] === ns;
      } catch {
        return false;
      }
    })
    .map((n) => join('/tmp', n));
}

function manifestData(store: string, seq: number): Record<string, unknown> {
  return JSON.parse(readFileSync(join(store, String(seq).padStart(6, '0'), 'manifest.json'), 'utf8')).data;
}

/** Two nodes, each with its own tmpfs at DIR/local (the stage), the store shared; an uninterrupted run's checksums. */
async function stagedCluster(t: TestContext) {
  if (!needSlurm(t)) return undefined;
  if (!(await needCriu(t))) return undefined;
  const expected = await uninterrupted(4);
  const cluster = await startCluster(t, { nodes: 2, cpusPerNode: 4, nodeLocalDirs: ['local'] });
  return { expected, cluster, store: join(cluster.dir, 'store'), stage: join(cluster.dir, 'local') };
}

test('criu --stage: 3 checkpoints that continue and one that ends the job, staged on each node; restarted with --stage; checksums exact', async (t) => {
  const c = await stagedCluster(t);
  if (!c) return;
  const { expected, cluster, store, stage } = c;
  const gate = join(cluster.dir, 'gate');
  const env = { ITERS: String(ITERS), GATE_AT: '100', GATE_FILE: gate };
  let job = cluster.spawn('salloc', [...alloc, 'run', '-n', '4', '--name', 'staged', '--dir', store, '--crs', 'criu', '--stage', stage, '--', process.execPath, program], { env });
  await gated(job, 4);
  for (let seq = 1; seq <= 3; seq++) {
    await cluster.check(process.execPath, [ckptBin, 'checkpoint', 'staged']);
    // Copied by the nodes (not written by the ranks into the store), and the staged copies gone.
    assert.equal(typeof manifestData(store, seq).stageCopyMs, 'number', `checkpoint ${seq} was staged`);
    for (const node of ['n1', 'n2']) assert.deepEqual(staged(node, stage), [], `${node}: nothing left staged after checkpoint ${seq}`);
  }
  await cluster.check(process.execPath, [ckptBin, 'checkpoint', 'staged', '--term']);
  const ended = await job.exited;
  assert.equal(ended.code, 85, `ended at its checkpoint:\n${ended.stderr}`);
  writeFileSync(gate, '');
  job = cluster.spawn('salloc', [...alloc, 'restart', store, '--stage', stage], { env: {} });
  const last = await job.exited;
  assert.equal(last.code, 0, `${last.stdout}\n${last.stderr}`);
  assert.deepEqual(checksums(last.stdout), expected);
  const verify = await cluster.check(process.execPath, [ckptBin, 'snapshots', 'verify', store]);
  assert.match(verify, /000004: ok/, verify);
});

test('criu --stage: a copy that fails aborts that checkpoint cleanly, the job goes on, the previous snapshot restarts; a --stage missing on the nodes is one line, exit 2', async (t) => {
  const c = await stagedCluster(t);
  if (!c) return;
  const { expected, cluster, store, stage } = c;

  const bad = await cluster.run('salloc', [...alloc, 'run', '-n', '2', '--dir', store, '--crs', 'criu', '--stage', '/nonexistent/ckpt-stage', '--', process.execPath, program], { timeoutMs: 120_000 });
  assert.equal(bad.code, 2, bad.stderr);
  const said = bad.stderr.split('\n').filter((l) => l.startsWith('ckpt'));
  assert.equal(said.length, 1, bad.stderr);
  assert.match(said[0]!, /^ckpt run: --stage: node n1: \/nonexistent\/ckpt-stage: no such directory; node n2: .* \[ECKPT_USAGE\]$/, bad.stderr);

  const gate = join(cluster.dir, 'gate');
  // The second time n2's agent copies rank 3's staged images, the copy fails.
  const env = { ITERS: String(ITERS), GATE_AT: '100', GATE_FILE: gate, CKPT_FAULT: 'staged:3:fail@2' };
  const job = cluster.spawn('salloc', [...alloc, 'run', '-n', '4', '--name', 'copyfault', '--dir', store, '--crs', 'criu', '--stage', stage, '--', process.execPath, program], { env });
  await gated(job, 4);
  await cluster.check(process.execPath, [ckptBin, 'checkpoint', 'copyfault']);
  const failed = await cluster.run(process.execPath, [ckptBin, 'checkpoint', 'copyfault'], { timeoutMs: 120_000 });
  assert.notEqual(failed.code, 0, failed.stdout);
  assert.match(failed.stderr, /checkpoint of job \w+ failed in phase commit: node n2: copying the staged images failed: rank 3: /, failed.stderr);
  // The partial snapshot is gone, the first untouched; nothing left staged; the job goes on.
  assert.deepEqual(readdirSync(store), ['000001']);
  for (const node of ['n1', 'n2']) assert.deepEqual(staged(node, stage), [], `${node}: nothing left staged`);
  assert.equal(job.child.exitCode, null, 'the job goes on');
  const ps = JSON.parse(await cluster.check(process.execPath, [ckptBin, 'ps', '--json'])).jobs as { name: string; state: string }[];
  assert.equal(ps.find((j) => j.name === 'copyfault')?.state, 'running');
  await cluster.check(process.execPath, [ckptBin, 'kill', 'copyfault']);
  await job.exited;
  writeFileSync(gate, '');
  const r = await cluster.run('salloc', [...alloc, 'restart', store], { timeoutMs: 180_000 });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.deepEqual(checksums(r.stdout), expected);
  assert.match(r.stderr, /restarted at iteration \d+/, 'restored from the first snapshot by CRIU');
});

test('criu --stage: an agent SIGKILLed while it copies leaves its staged images and relay directory; the next job\'s agent on that node removes them', async (t) => {
  const c = await stagedCluster(t);
  if (!c) return;
  const { cluster, store, stage } = c;
  const gateFile = join(cluster.dir, 'gate');
  // n2's agent stops as it is about to copy rank 3's staged images, and is killed there.
  const fault = faultEnv(t, 'staged:3:gate');
  const env = { ITERS: String(ITERS), GATE_AT: '100', GATE_FILE: gateFile, ...fault };
  const job = cluster.spawn('salloc', [...alloc, 'run', '-n', '4', '--name', 'crashed', '--dir', store, '--crs', 'criu', '--stage', stage, '--', process.execPath, program], { env });
  await gated(job, 4);
  const checkpoint = cluster.spawn(process.execPath, [ckptBin, 'checkpoint', 'crashed']);
  await gate(fault.CKPT_FAULT_DIR, 'staged', 3).reached();
  const agent = agentPids('n2').at(-1)!;
  const relayDirs = relayDirsOf(agent);
  assert.equal(relayDirs.length, 1, "n2's agent's relay directory");
  for (const pid of agentPids('n2')) process.kill(pid, 'SIGKILL');
  assert.notEqual((await checkpoint.exited).code, 0, 'the checkpoint fails');
  assert.notEqual((await job.exited).code, 0, 'the job is aborted: n2 is lost');

  // What it left: its checkpoint's staged directory on n2 (ranks 2 and 3), its relay directory.
  const n2Stage = `/proc/${slurmdPid(cluster.conf, 'n2')}/root${stage}`;
  const [jobDir] = readdirSync(n2Stage);
  assert.ok(jobDir, `something is left staged on n2: ${readdirSync(n2Stage).join(', ')}`);
  const [seqDir] = readdirSync(join(n2Stage, jobDir));
  assert.match(seqDir!, /^1-1\.\d+\.\d+\.\d+@n2$/, 'checkpoint 1, its writer the agent (pid 1 of its namespace) on n2');
  assert.deepEqual(readdirSync(join(n2Stage, jobDir, seqDir!)).sort(), ['rank-2', 'rank-3']);
  assert.ok(existsSync(relayDirs[0]!), 'a SIGKILLed agent cannot remove its relay directory');

  // The next job on these nodes: n2's new agent sweeps both as it starts.
  writeFileSync(gateFile, '');
  const next = await cluster.run('salloc', [...alloc, 'run', '-n', '4', '--dir', join(cluster.dir, 'store2'), '--crs', 'criu', '--stage', stage, '--', process.execPath, program], { env: { ITERS: String(ITERS) }, timeoutMs: 120_000 });
  assert.equal(next.code, 0, next.stderr);
  assert.deepEqual(readdirSync(n2Stage), [], 'nothing left staged on n2');
  assert.equal(existsSync(relayDirs[0]!), false, "the dead agent's relay directory is gone");
});

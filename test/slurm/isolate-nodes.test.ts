// Transparent mode across nodes (issue #12): an unmodified Open MPI job, mpirun on
// n1 and ranks on n1 and n2 of a real Slurm cluster (test/slurm/cluster.ts), run by
// `ckpt run --isolate --launcher slurm`: one isolated tree per node, checkpointed
// with --term (every node's part dumped by real CRIU, the job ended), restarted on
// the same nodes, checkpointed and restarted again, prints exactly what an
// uninterrupted run prints. Rank 0 waits at a gate file at round 30, so both
// checkpoints fall mid-run without any timing.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ckptBin, eventually, fixture, needCriu } from '../helpers.js';
import { findProgram, needSlurm, startCluster, type SlurmCluster } from './cluster.js';

/** Outside /tmp: /tmp is private (empty) inside an isolated job. */
function workDir(t: TestContext): string {
  const dir = mkdtempSync('/var/tmp/ckpt-nodes-test-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `ckpt ARGS` as a step of job `jobId` on node n1 (where mpirun runs). */
function ckptOnN1(jobId: string, args: string[]): [string, string[]] {
  return ['srun', [`--jobid=${jobId}`, '--overlap', '-N1', '-n1', '-w', 'n1', process.execPath, ckptBin, ...args]];
}

const ranks = (stdout: string): string[] => stdout.split('\n').filter((l) => /^(round|gate|done) /.test(l));

async function allocate(cluster: SlurmCluster): Promise<string> {
  const r = await cluster.run('salloc', ['-N2', '-w', 'n1,n2', '--no-shell']);
  const id = /Granted job allocation (\d+)/.exec(r.stderr)?.[1];
  assert.ok(id, `salloc: ${r.stderr}`);
  return id;
}

test('mpirun across two Slurm nodes, isolated per node: checkpoint --term, restart on the same nodes, twice, output identical to an uninterrupted run', async (t) => {
  if (!needSlurm(t) || !(await needCriu(t))) return;
  if (!findProgram('mpicc') || !findProgram('orted')) {
    if (process.env.CKPT_REQUIRE_SLURM === '1') throw new Error('Open MPI required (apt-get install openmpi-bin libopenmpi-dev)');
    t.skip('Open MPI not installed');
    return;
  }
  const dir = workDir(t);
  const exe = join(dir, 'ring');
  execFileSync('mpicc', ['-O2', '-o', exe, fixture('isolate/ring.c')]);
  const cluster = await startCluster(t, { nodes: 2 });
  const jobId = await allocate(cluster);
  const opts = { cwd: dir, env: { CKPT_STATE_DIR: join(dir, 'state') }, timeoutMs: 180_000 };
  const mpirun = (name: string, gate: string) => ['run', '--isolate', '--launcher', 'slurm', '--name', name, '--', 'mpirun', '-np', '4', '--host', 'n1:2,n2:2', exe, '60', '30', gate];

  // Uninterrupted: the gate is open from the start.
  const open = join(dir, 'open');
  writeFileSync(open, '');
  const reference = await cluster.run(...ckptOnN1(jobId, mpirun('ref', open)), opts);
  assert.equal(reference.code, 0, reference.stderr);
  const expected = ranks(reference.stdout);
  assert.equal(expected.length, 62, reference.stdout);
  assert.equal(expected.at(-1), 'done 4 ranks');

  const gate = join(dir, 'gate');
  const job = cluster.spawn(...ckptOnN1(jobId, mpirun('ring', gate)), opts);
  assert.ok(await eventually(() => /^gate 30$/m.test(job.stdout()), 120_000, 100), `at the gate: ${job.stdout()} ${job.stderr()}`);
  const ps = await cluster.run(...ckptOnN1(jobId, ['ps']), opts);
  assert.match(ps.stdout, /\bring@n2\b/, `the part on n2 is a job of its own: ${ps.stdout}`);

  const store = join(dir, 'store');
  const ck = await cluster.run(...ckptOnN1(jobId, ['checkpoint', 'ring', '--term', '--dir', store, '--json']), opts);
  assert.equal(ck.code, 0, ck.stderr);
  const out = JSON.parse(ck.stdout) as { kind: string; nodes: { host: string; snapshot: string }[] };
  assert.equal(out.kind, 'isolated-nodes');
  assert.deepEqual(out.nodes.map((n) => n.host), ['n1', 'n2']);
  const ended = await job.exited;
  assert.equal(ended.code, 85, `ended at its checkpoint: ${ended.stderr}`); // srun passes ckpt run's status on
  const before = ranks(ended.stdout);
  assert.equal(before.at(-1), 'gate 30', 'checkpointed mid-run');

  // Restarted with the gate still shut: the restored job waits there, and is checkpointed again.
  const again = cluster.spawn(...ckptOnN1(jobId, ['restart', store]), opts);
  // Until both are restored and listed (a safety-net deadline, not a phase wait by time).
  let listed = '';
  for (const deadline = Date.now() + 120_000; !(/^\S+\s+ring\s/m.test(listed) && /\bring@n2\b/.test(listed)); ) {
    assert.ok(Date.now() < deadline && again.child.exitCode === null, `restored and listed: ${listed} ${again.stderr()}`);
    listed = (await cluster.run(...ckptOnN1(jobId, ['ps']), opts)).stdout;
  }
  const ck2 = await cluster.run(...ckptOnN1(jobId, ['checkpoint', 'ring', '--term', '--dir', store, '--json']), opts);
  assert.equal(ck2.code, 0, `${ck2.stderr} ${again.stderr()}`);
  assert.deepEqual((JSON.parse(ck2.stdout) as typeof out).nodes.map((n) => n.snapshot), ['n1/000002', 'n2/000002']);
  const ended2 = await again.exited;
  assert.equal(ended2.code, 85, ended2.stderr);
  assert.deepEqual(ranks(ended2.stdout), [], 'nothing printed while waiting at the gate');

  writeFileSync(gate, '');
  const restarted = await cluster.run(...ckptOnN1(jobId, ['restart', store]), opts);
  assert.equal(restarted.code, 0, restarted.stderr);
  assert.deepEqual([...before, ...ranks(restarted.stdout)], expected, 'checkpoint, end, restart, again: what an uninterrupted run prints');
  // Every restore removed CRIU's network lock of its node.
  for (const node of ['n1', 'n2']) {
    const tables = await cluster.runOnNode(node, 'nft', ['list', 'tables']);
    assert.doesNotMatch(tables.stdout, /CRIU-/, `no lock table left on ${node}`);
  }
});

test('--isolate --launcher slurm: outside an allocation, or with a command that is not mpirun, one line and nothing started', async (t) => {
  if (!needSlurm(t)) return;
  const dir = workDir(t);
  const cluster = await startCluster(t, { nodes: 1 });
  const opts = { cwd: dir, env: { CKPT_STATE_DIR: join(dir, 'state') } };
  const outside = await cluster.run(process.execPath, [ckptBin, 'run', '--isolate', '--launcher', 'slurm', '--', 'mpirun', '-np', '2', 'true'], opts);
  assert.equal(outside.code, 1, outside.stderr);
  assert.match(outside.stderr.trim(), /^ckpt( run)?: the start of an isolated job across nodes runs inside its Slurm allocation .*\[ECKPT_NO_ALLOCATION\]$/);
  const notMpi = await cluster.run('salloc', ['-N1', process.execPath, ckptBin, 'run', '--isolate', '--launcher', 'slurm', '--', 'true'], opts);
  assert.equal(notMpi.code, 2, notMpi.stderr);
  assert.match(notMpi.stderr, /^ckpt run: .*the command is mpirun.*\[ECKPT_USAGE\]$/m);
  const net = await cluster.run('salloc', ['-N1', process.execPath, ckptBin, 'run', '--isolate', '--net', '--launcher', 'slurm', '--', 'mpirun', 'true'], opts);
  assert.equal(net.code, 2, net.stderr);
  assert.match(net.stderr, /^ckpt run: --net does not go with --isolate --launcher slurm \[ECKPT_USAGE\]$/m);
});

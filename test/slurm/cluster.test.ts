// The Slurm test cluster itself (test/slurm/cluster.ts): srun across namespace "hosts",
// a batch job requeued the way checkpoint-on-preemption will requeue it, and a node
// whose slurmd dies going down (and coming back). Skips without Slurm, fails instead
// under CKPT_REQUIRE_SLURM=1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { needSlurm, startCluster } from './cluster.js';

/** Polls for a file (a job's marker); bounded. */
async function waitForFile(path: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} did not appear in ${timeoutMs} ms`);
    await sleep(100);
  }
}

test('srun -N 3 -n 3 runs one task on each of n1, n2, n3; stop leaves nothing behind', async (t) => {
  if (!needSlurm(t)) return;
  const cluster = await startCluster(t, { nodes: 3 });
  t.diagnostic(`cluster of 3 nodes up in ${cluster.timings.startMs} ms`);
  assert.deepEqual(cluster.nodes, [
    { name: 'n1', address: '169.254.77.11' },
    { name: 'n2', address: '169.254.77.12' },
    { name: 'n3', address: '169.254.77.13' },
  ]);

  const r = await cluster.run('srun', ['-N', '3', '-n', '3', 'hostname']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n').sort(), ['n1', 'n2', 'n3']);

  // Each node has its own address, and clients run on the login host.
  const addr = await cluster.run('srun', ['-N', '3', '-n', '3', '--ntasks-per-node=1', 'sh', '-c', 'echo $(hostname) $(ip -4 -o addr show dev eth0 | grep -o "inet [0-9.]*")']);
  assert.equal(addr.code, 0, addr.stderr);
  assert.deepEqual(addr.stdout.trim().split('\n').sort(), ['n1 inet 169.254.77.11', 'n2 inet 169.254.77.12', 'n3 inet 169.254.77.13']);
  assert.equal((await cluster.check('hostname')).trim(), 'login');

  // Partitions for preemption are configured.
  const parts = await cluster.check('scontrol', ['show', 'partition', '-o']);
  const low = parts.split('\n').find((l) => l.startsWith('PartitionName=low ')) ?? '';
  const high = parts.split('\n').find((l) => l.startsWith('PartitionName=high ')) ?? '';
  for (const word of ['Default=YES', 'PriorityTier=1', 'GraceTime=5', 'PreemptMode=REQUEUE']) assert.ok(low.split(' ').includes(word), `${word} in ${low}`);
  for (const word of ['PriorityTier=10', 'PreemptMode=OFF']) assert.ok(high.split(' ').includes(word), `${word} in ${high}`);

  // Teardown: one kill; nothing is left (not the directory, not a process).
  const dir = cluster.dir;
  const init = cluster.pid;
  assert.ok(init > 1 && existsSync(`/proc/${init}`));
  await cluster.stop();
  t.diagnostic(`cluster stopped in ${cluster.timings.stopMs} ms, its directory removed in ${cluster.timings.removeMs} ms`);
  assert.equal(existsSync(dir), false);
  assert.equal(existsSync(`/proc/${init}`), false);
});

test('a batch job requeued by itself on USR1 runs again with SLURM_RESTART_COUNT=1', async (t) => {
  if (!needSlurm(t)) return;
  const cluster = await startCluster(t, { nodes: 2 });
  const out = join(cluster.dir, 'jobs', 'requeue.out');
  const marker = join(cluster.dir, 'jobs', 'first-run');
  // The first run writes a marker and waits; on USR1 (to the batch shell: scancel -b)
  // it requeues itself — what a checkpoint-on-preemption handler will do once saved.
  const script = `#!/bin/bash
echo "run restart=\${SLURM_RESTART_COUNT:-none} host=$(hostname)"
if [ -z "\${SLURM_RESTART_COUNT:-}" ]; then
  trap 'echo "got USR1"; scontrol requeue "$SLURM_JOB_ID"; exit 0' USR1
  touch ${marker}
  sleep 300 & wait
  exit 3
fi
echo finished
`;
  const id = await cluster.sbatch(script, ['--requeue', '--open-mode=append', '-N', '1', '-n', '1', '-o', out, '-J', 'requeue']);
  await cluster.waitForJobState(id, 'RUNNING', 30_000);
  await waitForFile(marker, 30_000);

  const t0 = Date.now();
  const sig = await cluster.run('scancel', ['--signal=USR1', '-b', id]);
  assert.equal(sig.code, 0, sig.stderr);
  // Requeued: counted, pending again (a requeued job may start again only after
  // cred_expire + a bit: ~12 s here) …
  // Restarts=1 shows while the first run is still COMPLETING: wait for PENDING.
  const requeued = await cluster.waitForJob(id, (j) => j.Restarts === '1' && j.JobState === 'PENDING', 'requeued', 30_000);
  t.diagnostic(`requeued ${Date.now() - t0} ms after USR1: ${requeued.JobState} (Reason=${requeued.Reason})`);
  // … then runs again and completes.
  await cluster.waitForJobState(id, ['RUNNING', 'COMPLETED'], 90_000);
  t.diagnostic(`running again ${Date.now() - t0} ms after USR1`);
  const done = await cluster.waitForJobState(id, 'COMPLETED', 30_000);
  assert.equal(done.Restarts, '1');
  assert.equal(done.ExitCode, '0:0');

  const lines = readFileSync(out, 'utf8').trim().split('\n');
  assert.match(lines[0]!, /^run restart=none host=n[12]$/);
  assert.ok(lines.includes('got USR1'), lines.join(' | '));
  assert.ok(lines.some((l) => /^run restart=1 host=n[12]$/.test(l)), lines.join(' | '));
  assert.equal(lines.at(-1), 'finished');
  assert.ok(!lines.some((l) => /exit 3/.test(l)));
});

test('a job requeued from outside (scontrol requeue) runs again', async (t) => {
  if (!needSlurm(t)) return;
  const cluster = await startCluster(t, { nodes: 1 });
  const out = join(cluster.dir, 'jobs', 'requeue2.out');
  const marker = join(cluster.dir, 'jobs', 'first-run-2');
  const script = `#!/bin/bash
echo "run restart=\${SLURM_RESTART_COUNT:-none}"
if [ -z "\${SLURM_RESTART_COUNT:-}" ]; then touch ${marker}; exec sleep 300; fi
echo finished
`;
  const id = await cluster.sbatch(script, ['--requeue', '--open-mode=append', '-o', out]);
  await waitForFile(marker, 30_000);
  await cluster.check('scontrol', ['requeue', id]);
  const done = await cluster.waitForJobState(id, 'COMPLETED', 90_000);
  assert.equal(done.Restarts, '1');
  // slurmstepd appends its own line to the output: "*** JOB N ON n1 CANCELLED AT … DUE TO JOB REQUEUE ***".
  const lines = readFileSync(out, 'utf8').trim().split('\n');
  assert.match(lines.find((l) => l.startsWith('slurmstepd')) ?? '', /DUE TO JOB REQUEUE/);
  assert.deepEqual(lines.filter((l) => !l.startsWith('slurmstepd')), ['run restart=none', 'run restart=1', 'finished']);
});

test('a job in the high partition preempts one in low: USR1 first, then requeued, and both complete', async (t) => {
  if (!needSlurm(t)) return;
  const cluster = await startCluster(t, { nodes: 1 }); // 2 CPUs
  const jobs = join(cluster.dir, 'jobs');
  const lowOut = join(jobs, 'low.out');
  // --signal=B:USR1@10 names the signal; preempt_send_user_signal sends it at preemption.
  const low = `#!/bin/bash
echo "low run restart=\${SLURM_RESTART_COUNT:-none}"
if [ -z "\${SLURM_RESTART_COUNT:-}" ]; then
  trap 'echo "got USR1"; touch ${jobs}/low-usr1' USR1
  trap 'echo "got TERM"; exit 143' TERM
  touch ${jobs}/low-started
  while :; do sleep 1 & wait $!; done
fi
echo "low finished"
`;
  const lowId = await cluster.sbatch(low, ['-p', 'low', '-n', '2', '--requeue', '--open-mode=append', '--signal=B:USR1@10', '-o', lowOut]);
  await waitForFile(join(jobs, 'low-started'), 30_000);

  const t0 = Date.now();
  const highId = await cluster.sbatch('#!/bin/bash\necho "high ran on $(hostname)"\n', ['-p', 'high', '-n', '2', '-o', join(jobs, 'high.out')]);
  await waitForFile(join(jobs, 'low-usr1'), 30_000);
  t.diagnostic(`low got USR1 ${Date.now() - t0} ms after high was submitted`);
  await cluster.waitForJobState(highId, 'COMPLETED', 90_000);
  t.diagnostic(`high completed ${Date.now() - t0} ms after it was submitted`);
  const done = await cluster.waitForJobState(lowId, 'COMPLETED', 120_000);
  t.diagnostic(`low completed after its requeue ${Date.now() - t0} ms after high was submitted`);
  assert.equal(done.Restarts, '1');
  assert.equal(readFileSync(join(jobs, 'high.out'), 'utf8').trim(), 'high ran on n1');
  const all = readFileSync(lowOut, 'utf8').trim().split('\n');
  t.diagnostic(`low's output: ${all.join(' | ')}`);
  const lines = all.filter((l) => !l.startsWith('slurmstepd'));
  assert.equal(lines[0], 'low run restart=none');
  assert.ok(lines.indexOf('got USR1') > 0, lines.join(' | '));
  assert.ok(lines.indexOf('low run restart=1') > lines.indexOf('got USR1'), lines.join(' | '));
  assert.equal(lines.at(-1), 'low finished');
});

test('a node whose slurmd is killed goes down, and comes back when it starts again', async (t) => {
  if (!needSlurm(t)) return;
  const cluster = await startCluster(t, { nodes: 2 });
  const t0 = Date.now();
  await cluster.killNode('n2');
  // SlurmdTimeout=10: not responding (idle*) first, then down (down*).
  const states = await cluster.waitForNodes(['n2'], ['down*', 'down'], 90_000);
  t.diagnostic(`n2 down ${Date.now() - t0} ms after its slurmd was killed`);
  assert.equal(states.get('n1'), 'idle');

  // A job for two nodes waits; one for n1 runs.
  const r = await cluster.run('srun', ['-N', '1', '-w', 'n1', 'hostname']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'n1');

  const t1 = Date.now();
  await cluster.startNode('n2');
  await cluster.waitForNodes(['n1', 'n2'], ['idle'], 60_000); // ReturnToService=2
  t.diagnostic(`n2 idle again ${Date.now() - t1} ms after its slurmd started`);
  const both = await cluster.run('srun', ['-N', '2', '-n', '2', 'hostname']);
  assert.equal(both.code, 0, both.stderr);
  assert.deepEqual(both.stdout.trim().split('\n').sort(), ['n1', 'n2']);
});

test('long-running clients (spawn) run inside the cluster and are killed with it', async (t) => {
  if (!needSlurm(t)) return;
  const cluster = await startCluster(t, { nodes: 1 });
  const p = cluster.spawn('srun', ['-N', '1', 'sh', '-c', 'echo started; exec sleep 300']);
  const deadline = Date.now() + 30_000;
  while (!p.stdout().includes('started')) {
    if (Date.now() > deadline) throw new Error(`srun did not start: ${p.stderr()}`);
    await sleep(100);
  }
  const jobs = await cluster.check('squeue', ['-h', '-o', '%i %T %N']);
  assert.match(jobs, /^\d+ RUNNING n1$/m);
  await cluster.stop();
  const r = await p.exited;
  assert.notEqual(r.code, 0);
});

test('a slurm.conf that stops slurmctld fails the start at once, with the daemon logs', async (t) => {
  if (!needSlurm(t)) return;
  const t0 = Date.now();
  // The spelling 22.05 does not know: every daemon exits (docs/TESTING-SLURM.md).
  await assert.rejects(startCluster(t, { nodes: 1, extraConfig: ['PreemptParameters=send_user_signal'] }), (err: Error) => {
    assert.match(err.message, /slurmctld or munged (died|exited)/);
    assert.match(err.message, /slurmctld\.(log|out)/);
    return true;
  });
  assert.ok(Date.now() - t0 < 20_000, `failed after ${Date.now() - t0} ms`);
});

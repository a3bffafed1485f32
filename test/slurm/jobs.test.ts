// Jobs across the nodes of a real Slurm (test/slurm/cluster.ts): `ckpt run` inside an
// allocation starts a node agent per node with srun; ranks talk over TCP across the
// namespace "nodes"; checkpoints go to the shared store and restart on other node
// sets, self and criu, with the checksums of an uninterrupted run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ckptBin, faultEnv, gate, needCriu } from '../helpers.js';
import { program } from '../jobs/exchange.js';
import { needSlurm, startCluster } from './cluster.js';
import { agentPids, checksums, gated, ITERS, uninterrupted } from './ring.js';

for (const [nodes, size] of [
  [2, 4],
  [3, 6],
] as const) {
  test(`-N ${nodes} -n ${size}: a ring job across the nodes runs to the end with the checksums of a local run`, async (t) => {
    if (!needSlurm(t)) return;
    const expected = await uninterrupted(size);
    const cluster = await startCluster(t, { nodes: 3, cpusPerNode: 4 });
    const args = ['-N', String(nodes), `--ntasks-per-node=${size / nodes}`, process.execPath, ckptBin, 'run', '-n', String(size), '--', process.execPath, program];
    const r = await cluster.run('salloc', args, { env: { ITERS: String(ITERS) }, timeoutMs: 120_000 });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(checksums(r.stdout), expected);
  });
}

for (const crs of ['self', 'criu'] as const) {
  test(`${crs}: 10 checkpoints that continue and 4 that end the job, restarted on 2 → 3 → 2 → 1 → 2 nodes; checksums exact`, async (t) => {
    if (!needSlurm(t)) return;
    if (crs === 'criu' && !(await needCriu(t))) return;
    const expected = await uninterrupted(4);
    const cluster = await startCluster(t, { nodes: 3, cpusPerNode: 4 });
    const store = join(cluster.dir, 'store');
    const gate = join(cluster.dir, 'gate');
    const env = { ITERS: String(ITERS), GATE_AT: '100', GATE_FILE: gate };
    const alloc = (nodes: number) => ['-N', String(nodes), `--ntasks-per-node=${Math.ceil(4 / nodes)}`, process.execPath, ckptBin];
    let job = cluster.spawn('salloc', [...alloc(2), 'run', '-n', '4', '--name', `ring-${crs}`, '--dir', store, '--crs', crs, '--', process.execPath, program], { env });
    await gated(job, 4);
    const ps = JSON.parse(await cluster.check(process.execPath, [ckptBin, 'ps', '--json'])).jobs as { name: string; ranks: { node?: string }[] }[];
    assert.deepEqual(ps.find((j) => j.name === `ring-${crs}`)?.ranks.map((r) => r.node), ['n1', 'n1', 'n2', 'n2'], 'ps shows where each rank runs');
    // The coordinator talks to agents, agents to their ranks: from each node exactly one
    // connection leads to the login host (its agent's), whatever the ranks on it.
    const coordPort = Number(/^CKPT_AGENT_COORD=tcp:[\d.]+:(\d+)$/m.exec(readFileSync(`/proc/${agentPids('n1')[0]}/environ`, 'utf8').replaceAll('\0', '\n'))?.[1]);
    for (const node of ['n1', 'n2']) assert.equal(connectionsToCoordinator(rankPids(cluster.conf, node)[0]!, coordPort), 1, `${node}: one connection to the coordinator`);
    for (let i = 0; i < 10; i++) await cluster.check(process.execPath, [ckptBin, 'checkpoint', `ring-${crs}`]);
    // A criu dump's CRIU is orphaned to the node's agent (process 1 of its pid namespace): it is
    // reaped there, not left a zombie per rank per checkpoint for as long as the job runs.
    for (const node of ['n1', 'n2']) {
      const agents = agentPids(node);
      await waitFor(() => agents.every((a) => zombieChildren(a).length === 0), `${node}'s agent to reap what the dumps left`, () => agents.map(zombieChildren).join(' '));
    }
    const nodeSets = [3, 2, 1, 2];
    for (const [k, nodes] of nodeSets.entries()) {
      await cluster.check(process.execPath, [ckptBin, 'checkpoint', `ring-${crs}`, '--term']);
      const ended = await job.exited;
      assert.equal(ended.code, 85, `ended at its checkpoint:\n${ended.stderr}`);
      // The last restart runs to the end.
      if (k === nodeSets.length - 1) writeFileSync(gate, '');
      job = cluster.spawn('salloc', [...alloc(nodes), 'restart', store], { env: {} });
      if (k < nodeSets.length - 1) await gated(job, 4);
    }
    const last = await job.exited;
    assert.equal(last.code, 0, `${last.stdout}\n${last.stderr}`);
    assert.deepEqual(checksums(last.stdout), expected);
    const inspect = await cluster.check(process.execPath, [ckptBin, 'snapshots', 'inspect', store]);
    assert.match(inspect, /n1/, inspect);
  });
}

async function waitFor(ok: () => boolean, what: string, show: () => string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${show()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The zombies among `pid`'s children (/proc/N/stat: state, then the parent). */
function zombieChildren(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!(Number(name) > 1)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z' && Number(ppid) === pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Host pids of the ranks (the exchange program) of this cluster running on `node`. */
function rankPids(conf: string, node: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!(pid > 1)) continue;
    try {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(program) && env.includes(`SLURMD_NODENAME=${node}`) && env.includes(`SLURM_CONF=${conf}`)) pids.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Established TCP connections in `pid`'s network namespace (its node) to the coordinator, 169.254.77.1:`port`. */
function connectionsToCoordinator(pid: number, port: number): number {
  const lines = readFileSync(`/proc/${pid}/net/tcp`, 'utf8').trim().split('\n').slice(1);
  // rem_address is little-endian hex: 169.254.77.1 = 014DFEA9; state 01 = ESTABLISHED.
  return lines.filter((l) => {
    const f = l.trim().split(/\s+/);
    return f[2] === `014DFEA9:${port.toString(16).toUpperCase().padStart(4, '0')}` && f[3] === '01';
  }).length;
}

for (const crs of ['self', 'criu'] as const) {
  test(`${crs}: a node's agent SIGKILLed mid-checkpoint: the checkpoint fails naming the node; the previous snapshot restarts on the other nodes`, async (t) => {
    if (!needSlurm(t)) return;
    if (crs === 'criu' && !(await needCriu(t))) return;
    const expected = await uninterrupted(6);
    const cluster = await startCluster(t, { nodes: 3, cpusPerNode: 4 });
    const store = join(cluster.dir, 'store');
    const gateFile = join(cluster.dir, 'gate');
    const phase = crs === 'self' ? 'save' : 'dump';
    const fault = faultEnv(t, `${phase}:coord:gate@2`);
    const faults = fault.CKPT_FAULT_DIR;
    const env = { ITERS: String(ITERS), GATE_AT: '100', GATE_FILE: gateFile, ...fault };
    const name = `lost-${crs}`;
    const job = cluster.spawn('salloc', ['-N', '3', '--ntasks-per-node=2', process.execPath, ckptBin, 'run', '-n', '6', '--name', name, '--dir', store, '--crs', crs, '--', process.execPath, program], { env });
    await gated(job, 6);
    await cluster.check(process.execPath, [ckptBin, 'checkpoint', name]);
    const second = cluster.spawn(process.execPath, [ckptBin, 'checkpoint', name]);
    const g = gate(faults, phase, 'coord');
    await g.reached();
    const agents = agentPids('n3');
    assert.ok(agents.length > 0, 'n3 has an agent');
    for (const pid of agents) process.kill(pid, 'SIGKILL');
    // The coordinator knows the node is gone before the checkpoint goes on (else the
    // node's ranks may still answer, and the checkpoint rightly commits).
    await waitFor(() => /node n3 lost/.test(job.stderr()), 'the coordinator to see n3 lost', () => job.stderr());
    g.open();
    const failed = await second.exited;
    assert.notEqual(failed.code, 0, 'the checkpoint in progress fails');
    assert.match(failed.stderr, /checkpoint of job \w+ failed/, failed.stderr);
    const ended = await job.exited;
    assert.notEqual(ended.code, 0);
    assert.match(ended.stderr, /node n3 lost/, ended.stderr);
    // Only the first checkpoint was committed; it restarts on n1 and n2, and runs to the end.
    const list = JSON.parse(await cluster.check(process.execPath, [ckptBin, 'snapshots', 'ls', store, '--json'])) as { snapshots: { seq: number }[] };
    assert.deepEqual(list.snapshots.map((s) => s.seq), [1]);
    writeFileSync(gateFile, '');
    const r = await cluster.run('salloc', ['-w', 'n1,n2', '-N', '2', '--ntasks-per-node=3', process.execPath, ckptBin, 'restart', store], { timeoutMs: 180_000 });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(checksums(r.stdout), expected);
  });
}

test('self: a rank SIGKILLed as it handles a prepare fanned out by its agent: the checkpoint fails at once, not at the phase timeout', async (t) => {
  if (!needSlurm(t)) return;
  const cluster = await startCluster(t, { nodes: 2, cpusPerNode: 4 });
  const store = join(cluster.dir, 'store');
  // A phase timeout far beyond the test's patience: only the closed connection can end the round.
  const env = { ITERS: String(ITERS), GATE_AT: '100', GATE_FILE: join(cluster.dir, 'gate'), CKPT_FAULT: 'prepare:3:kill@2', CKPT_CHECKPOINT_PHASE_MS: '600000' };
  const job = cluster.spawn('salloc', ['-N', '2', '--ntasks-per-node=2', process.execPath, ckptBin, 'run', '-n', '4', '--name', 'fanout-kill', '--dir', store, '--crs', 'self', '--', process.execPath, program], { env });
  await gated(job, 4);
  await cluster.check(process.execPath, [ckptBin, 'checkpoint', 'fanout-kill']);
  const second = await cluster.run(process.execPath, [ckptBin, 'checkpoint', 'fanout-kill'], { timeoutMs: 120_000 });
  assert.notEqual(second.code, 0, second.stdout);
  // The round failed on rank 3's closed connection, not because the job had ended meanwhile.
  assert.match(second.stderr, /failed in phase prepare: rank 3/, second.stderr);
  const ended = await job.exited;
  assert.notEqual(ended.code, 0);
  assert.match(ended.stderr, /rank 3 was killed by SIGKILL/, ended.stderr);
});

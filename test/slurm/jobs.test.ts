// Jobs across the nodes of a real Slurm (test/slurm/cluster.ts): `ckpt run` inside an
// allocation starts a node agent per node with srun; ranks talk over TCP across the
// namespace "nodes"; checkpoints go to the shared store and restart on other node
// sets, self and criu, with the checksums of an uninterrupted run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ckptBin, ckptProgram, needCriu } from '../helpers.js';
import { program } from '../jobs/exchange.js';
import { needSlurm, startCluster } from './cluster.js';

const ITERS = 200;

function checksums(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of text.matchAll(/^\[(\d+)\] rank \d+ checksum (\d+)$/gm)) out.set(Number(m[1]), m[2]!);
  return out;
}

async function uninterrupted(n: number): Promise<Map<number, string>> {
  const p = ckptProgram(['run', '-n', String(n), '--', process.execPath, program], { ITERS: String(ITERS) });
  assert.equal((await p.exited).code, 0, p.stderr);
  return checksums(p.lines.join('\n'));
}

test('-N 2 -n 4: a ring job across two nodes runs to the end with the checksums of a local run', async (t) => {
  if (!needSlurm(t)) return;
  const expected = await uninterrupted(4);
  const cluster = await startCluster(t, { nodes: 3, cpusPerNode: 4 });
  const r = await cluster.run('salloc', ['-N', '2', '-n', '4', process.execPath, ckptBin, 'run', '-n', '4', '-v', '--', process.execPath, program], {
    env: { ITERS: String(ITERS) },
    timeoutMs: 120_000,
  });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.deepEqual(checksums(r.stdout), expected);
});

/** Waits until `p`'s stdout shows `n` ranks at the gate, or back there (a criu rank wakes inside its gate loop). */
async function gated(p: { stdout: () => string; stderr: () => string; exited: Promise<unknown> }, n: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let ended = false;
  void p.exited.then(() => (ended = true));
  for (;;) {
    // `gated` on stdout, `restarted at` on stderr.
    const text = p.stdout() + p.stderr();
    if ((text.match(/ gated | restarted at iteration /g) ?? []).length >= n) return;
    if (ended || Date.now() > deadline) throw new Error(`${ended ? 'the job ended' : 'timed out'} before ${n} ranks were at the gate:\n${p.stdout()}\n${p.stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

for (const crs of ['self', 'criu'] as const) {
  test(`${crs}: 10 checkpoints that continue and 3 that end the job, restarted on 2 → 3 → 2 → 1 nodes; checksums exact`, async (t) => {
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
    const ps = JSON.parse(await cluster.check(process.execPath, [ckptBin, 'ps', '--json'])) as { name: string; ranks: { node?: string }[] }[];
    assert.deepEqual(ps.find((j) => j.name === `ring-${crs}`)?.ranks.map((r) => r.node), ['n1', 'n1', 'n2', 'n2'], 'ps shows where each rank runs');
    for (let i = 0; i < 10; i++) await cluster.check(process.execPath, [ckptBin, 'checkpoint', `ring-${crs}`]);
    const nodeSets = [3, 2, 1];
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

// A ckpt job under a real Slurm (test/slurm/cluster.ts): the scheduler's USR1 — sent
// by hand to the batch shell, or by a preemption — becomes a checkpoint and a requeue;
// the requeued run executes the same batch script, whose `ckpt run --resume` line
// resumes from the snapshot and finishes with the checksums of an uninterrupted run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ckptBin, ckptProgram } from '../helpers.js';
import { program } from '../jobs/exchange.js';
import { needSlurm, startCluster } from './cluster.js';

const ITERS = 300;
const GATE_AT = 100;

/** Polls a file until `ok(text)` (the job's output, appended across runs). */
async function waitForOutput(path: string, ok: (text: string) => boolean, what: string, timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
    if (ok(text)) return text;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} in ${path}: ${text.slice(-1500)}`);
    await sleep(100);
  }
}
const count = (text: string, re: RegExp) => (text.match(new RegExp(re, 'g')) ?? []).length;

function checksums(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of text.matchAll(/^\[(\d+)\] rank \d+ checksum (\d+)$/gm)) out.set(Number(m[1]), m[2]!);
  return out;
}

async function uninterrupted(): Promise<Map<number, string>> {
  const p = ckptProgram(['run', '-n', '2', '--', process.execPath, program], { ITERS: String(ITERS) });
  assert.equal((await p.exited).code, 0, p.stderr);
  return checksums(p.lines.join('\n'));
}

/** The batch script: one `exec ckpt run --resume …` line, the same for every run. */
function batchScript(dir: string): string {
  return `#!/bin/bash
echo "run restart=\${SLURM_RESTART_COUNT:-none}"
export ITERS=${ITERS} GATE_AT=${GATE_AT} GATE_FILE=${join(dir, 'gate')}
exec ${process.execPath} ${ckptBin} run -n 2 --name slurmjob --dir ${join(dir, 'store')} --crs self \\
  --resume --checkpoint-signal USR1 --on-checkpoint-signal requeue -- ${process.execPath} ${program} 2>&1
`;
}

test('scancel --signal=USR1 -b: the job checkpoints and requeues itself; the requeued run resumes and ends exactly', async (t) => {
  if (!needSlurm(t)) return;
  const expected = await uninterrupted();
  const cluster = await startCluster(t, { nodes: 1 });
  const out = join(cluster.dir, 'jobs', 'ckpt.out');
  const id = await cluster.sbatch(batchScript(cluster.dir), ['-n', '1', '--requeue', '--open-mode=append', '-o', out]);
  await waitForOutput(out, (s) => count(s, / gated /) === 2, 'both ranks at the gate');
  await cluster.check('scancel', ['--signal=USR1', '-b', id]);
  // Requeued by ckpt once the snapshot was committed: pending again, then running again.
  await cluster.waitForJob(id, (j) => j.Restarts === '1', 'the requeue', 60_000);
  const second = await waitForOutput(out, (s) => count(s, / gated /) === 4, 'the resumed ranks at the gate');
  assert.match(second, /checkpointed into .*000001.*status 85/);
  assert.match(second, /requeued Slurm job/);
  assert.match(second, /run restart=1[\s\S]*resuming job slurmjob from snapshot 1/);
  await cluster.check('touch', [join(cluster.dir, 'gate')]);
  const done = await cluster.waitForJobState(id, 'COMPLETED', 120_000);
  assert.equal(done.Restarts, '1');
  assert.deepEqual(checksums(readFileSync(out, 'utf8')), expected);
});

test('preempted by a job of a higher partition: USR1, checkpoint, requeue; resumed once the node is free, ends exactly', async (t) => {
  if (!needSlurm(t)) return;
  const expected = await uninterrupted();
  const cluster = await startCluster(t, { nodes: 1 }); // 2 CPUs: the two jobs cannot share it
  const jobs = join(cluster.dir, 'jobs');
  const out = join(jobs, 'low.out');
  // --signal names the signal a preemption sends (preempt_send_user_signal).
  const low = await cluster.sbatch(batchScript(cluster.dir), ['-p', 'low', '-n', '2', '--requeue', '--open-mode=append', '--signal=B:USR1@10', '-o', out]);
  await waitForOutput(out, (s) => count(s, / gated /) === 2, 'both ranks at the gate');
  const high = await cluster.sbatch('#!/bin/bash\necho "high ran on $(hostname)"\n', ['-p', 'high', '-n', '2', '-o', join(jobs, 'high.out')]);
  await waitForOutput(out, (s) => /status 85/.test(s), 'the checkpoint on preemption');
  await cluster.waitForJobState(high, 'COMPLETED', 90_000);
  await waitForOutput(out, (s) => count(s, / gated /) === 4, 'the resumed ranks at the gate');
  await cluster.check('touch', [join(cluster.dir, 'gate')]);
  const done = await cluster.waitForJobState(low, 'COMPLETED', 120_000);
  assert.ok(Number(done.Restarts) >= 1);
  const text = readFileSync(out, 'utf8');
  assert.match(text, /resuming job slurmjob from snapshot 1/);
  assert.deepEqual(checksums(text), expected);
});

// What an operator or a benchmark times a job with, through its control connection:
// a bare round to every rank (ping-ranks), and each checkpoint's phases as the
// coordinator timed them, with the commit's wait on the disk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixture, tempDir } from '../helpers.js';
import { launchJob } from '../../dist/runtime/index.js';
import { controlRequest } from '../../dist/control/job-control.js';
import { closeSnapshot, openSnapshot } from '../../dist/store/store.js';

test('ping-ranks answers once every rank has; a checkpoint reports its phases, its disk wait and each rank’s way to the safe point', async (t) => {
  const dir = tempDir(t);
  const stop = join(dir, 'stop');
  const job = await launchJob({
    command: process.execPath,
    args: [fixture('jobs/steady.mjs')],
    size: 3,
    name: `ping${process.pid}`,
    output: { mode: 'events' },
    env: { STOP_FILE: stop },
    store: join(dir, 'store'),
    crs: 'self',
  });
  t.after(() => job.kill());
  if (!job.isReady) await once(job, 'ready');

  const ping = await controlRequest(job.record(), 'ping-ranks');
  assert.equal(typeof ping.ms, 'number');
  assert.equal(ping.waitedMs, undefined);
  // Started after a wait (bench/slurm.mjs's round after an idle): it says how long it waited.
  const later = await controlRequest(job.record(), 'ping-ranks', { delayMs: 20 });
  assert.ok(typeof later.ms === 'number' && typeof later.waitedMs === 'number' && later.waitedMs > 0, JSON.stringify(later));
  // Only a job across nodes has agents: one clear refusal, not a hang.
  await assert.rejects(controlRequest(job.record(), 'ping-agents'), /refused 'ping-agents': this job has no node agents/);

  const committed = once(job, 'checkpoint');
  const reply = await controlRequest(job.record(), 'checkpoint', {}, 60_000);
  const phases = reply.phasesMs as Record<string, number>;
  assert.deepEqual(Object.keys(phases), ['begin', 'prepare', 'reach', 'save', 'commit', 'resume']);
  assert.ok(Object.values(phases).every((ms) => Number.isFinite(ms) && ms >= 0), JSON.stringify(phases));
  assert.ok(typeof reply.syncMs === 'number' && reply.syncMs >= 0 && reply.syncMs <= phases.commit!, `syncMs ${String(reply.syncMs)} within the commit`);
  const s = openSnapshot(String(reply.snapshot));
  try {
    const reach = s.manifest.data.reachMs as number[];
    assert.equal(reach.length, 3);
    assert.ok(reach.every((ms) => Number.isFinite(ms) && ms >= 0), JSON.stringify(reach));
  } finally {
    closeSnapshot(s);
  }

  // The next snapshot's directory is made once the checkpoint is over (at the turn of the
  // event loop after it), and taken by the next checkpoint, also one that names the
  // job's own checkpointer, as `ckpt checkpoint --crs` and the bench do.
  await committed;
  await new Promise(setImmediate);
  const store = join(dir, 'store');
  const ahead = readdirSync(store).filter((n) => n.startsWith('.partial-'));
  assert.equal(ahead.length, 1, `one directory made ahead: ${ahead.join(' ')}`);
  const aheadIno = statSync(join(store, ahead[0]!)).ino;
  const next = await controlRequest(job.record(), 'checkpoint', { crs: 'self' }, 60_000);
  assert.equal(statSync(String(next.snapshot)).ino, aheadIno, 'the second snapshot is the directory made ahead');

  writeFileSync(stop, '');
  const result = await job.wait();
  assert.equal(result.status, 0, result.error?.message);
});

// --stage DIR for a job on one host (the local launcher; across nodes:
// test/slurm/stage.test.ts): criu ranks dump into DIR, the coordinator copies their
// images into the store before the commit and removes the staged copies; a failed copy
// (fault point `staged`, in the coordinator here) fails that checkpoint only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { listSnapshots } from '../../dist/store/store.js';
import { ckpt, ckptProgram, needCriu, tempDir, waitForListedJob } from '../helpers.js';
import { held, program, restartToEnd, uninterrupted } from '../jobs/exchange.js';

const criu = { crs: 'criu', iters: 6000, name: `s${process.pid}`, env: { NO_SAFEPOINT: '1' } } as const;

test('criu --stage on one host: staged checkpoints that continue and one that ends the job; a failed copy fails only its checkpoint; the restart is exact', async (t) => {
  if (!(await needCriu(t))) return;
  const expected = await uninterrupted(t, criu);
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const stage = tempDir(t, 'ckpt-stage-');
  const hold = held(dir);
  const env = { ...criu.env, ...hold.env, ITERS: String(criu.iters), CKPT_STATE_DIR: join(dir, 'state') };
  const name = `st${process.pid}`;
  // The second time the coordinator copies rank 1's staged images, the copy fails.
  const run = ckptProgram(['run', '-n', '4', '--crs', 'criu', '--name', name, '--dir', store, '--stage', stage, '--', process.execPath, program], { ...env, CKPT_FAULT: 'staged:1:fail@2' });
  t.after(() => run.kill());
  await waitForListedJob(name, env);
  await hold.reached(run);

  const first = await ckpt(['checkpoint', name], env);
  assert.equal(first.code, 0, first.stderr);
  const data = JSON.parse(readFileSync(join(store, '000001', 'manifest.json'), 'utf8')).data;
  assert.equal(typeof data.stageCopyMs, 'number', 'copied from the stage');
  assert.deepEqual(readdirSync(stage), [], 'nothing left staged');

  const second = await ckpt(['checkpoint', name], env);
  assert.notEqual(second.code, 0);
  assert.match(second.stderr, /failed in phase commit: copying the staged images failed: rank 1: fault injected at staged/, second.stderr);
  assert.deepEqual(readdirSync(store), ['000001'], 'the partial snapshot is gone, the first untouched');
  assert.deepEqual(readdirSync(stage), [], 'nothing left staged');
  assert.equal(run.child.exitCode, null, 'the job goes on');

  const last = await ckpt(['checkpoint', name, '--term'], env);
  assert.equal(last.code, 0, last.stderr);
  assert.equal((await run.exited).code, 85);
  assert.deepEqual(listSnapshots(store).map((s) => s.seq).length, 2);
  assert.deepEqual(readdirSync(stage), []);
  hold.release();
  assert.deepEqual(await restartToEnd(t, store), expected);
});

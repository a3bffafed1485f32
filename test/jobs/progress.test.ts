// Per-rank progress of a criu job's checkpoint (issue #15): the coordinator watches
// each rank's images and a control client that asks gets `progress` messages while
// the ranks are not done — held after their dumps at the `dumped` fault point.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkpointJob } from '../../dist/control/job-control.js';
import type { RankProgress } from '../../dist/runtime/job-checkpoint.js';
import { ckptProgram, eventually, faultEnv, fixture, gate, needCriu, tempDir, waitForListedJob } from '../helpers.js';

test('criu job: progress of each rank arrives while the ranks stand dumped, before the checkpoint is done', async (t) => {
  if (!(await needCriu(t))) return;
  const dir = tempDir(t);
  const stopFile = join(dir, 'STOP');
  const env = { CKPT_STATE_DIR: join(dir, 'state'), STOP_FILE: stopFile, MARK_DIR: dir };
  const fault = faultEnv(t, 'dumped:*:gate@1');
  const name = `g${process.pid}`;
  const run = ckptProgram(['run', '-n', '2', '--crs', 'criu', '--name', name, '--dir', join(dir, 'store'), '--', process.execPath, fixture('jobs/steady.mjs')], { ...env, ...fault });
  t.after(() => run.kill());
  await waitForListedJob(name, env);
  const saved = process.env.CKPT_STATE_DIR;
  process.env.CKPT_STATE_DIR = env.CKPT_STATE_DIR;
  t.after(() => (saved === undefined ? delete process.env.CKPT_STATE_DIR : (process.env.CKPT_STATE_DIR = saved)));
  const events: RankProgress[] = [];
  let finished = false;
  const done = checkpointJob(name, {}, 120_000, undefined, (p) => events.push(p)).finally(() => (finished = true));
  const gates = [0, 1].map((r) => gate(fault.CKPT_FAULT_DIR, 'dumped', r));
  for (const g of gates) await g.reached();
  assert.ok(await eventually(() => [0, 1].every((r) => events.some((e) => e.rank === r && e.bytes > 0))), `progress of both ranks: ${JSON.stringify(events.at(-1))}`);
  assert.equal(finished, false);
  for (const g of gates) g.open();
  const r = await done;
  assert.equal(r.seq, 1);
  writeFileSync(stopFile, '');
  const exit = await run.exited;
  assert.equal(exit.code, 0, run.stderr);
});

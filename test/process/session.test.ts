// A session led from outside the pid namespace (a CI harness that entered a
// container's pid namespace): CRIU refuses such a process. A program that
// checkpoints itself leads a session of its own first and works; a process
// dumped from outside gets a one-line ECKPT_SESSION_OUTSIDE naming the way out
// and keeps running; started with setsid, it is dumped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ckptBin, fixture, isOneLineError, needCriu, tempDir } from '../helpers.js';

test('a session led from outside the pid namespace: self-checkpoint works, an outside dump says why not', async (t) => {
  if (!(await needCriu(t))) return;
  const dir = tempDir(t);
  const run = spawnSync(
    'unshare',
    ['--pid', '--fork', '--mount-proc', fixture('process/outside-session.sh'), process.execPath, ckptBin, fixture('process/counter.mjs'), dir],
    { encoding: 'utf8', timeout: 180_000, env: { ...process.env, UV_USE_IO_URING: '0' } },
  );
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
  const out = run.stdout.trim().split('\n');
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  assert.equal(out[0], 'sid 0', 'the scenario really runs in a session led from outside');

  assert.ok(out.includes('restart 0'), `${run.stdout}\n${read('self.out')}\n${read('restart.out')}`);
  assert.match(read('self.out'), /^continue counter=5 seq=1$/m);
  const restarted = read('restart.out').trim().split('\n');
  assert.ok(restarted.includes('restart counter=5 seq=1'), read('restart.out'));
  assert.deepEqual(restarted.slice(-2), ['count 10', 'done']);

  assert.ok(out.includes('plain 1'), run.stdout);
  assert.ok(out.includes('plain victim alive'), run.stdout);
  const err = read('plain.err');
  assert.ok(isOneLineError(err), err);
  assert.match(err, /leader of its session is outside its pid namespace.*setsid.*\[ECKPT_SESSION_OUTSIDE\]/);

  assert.ok(out.includes('setsid 0'), `${run.stdout}\n${read('setsid.err')}`);
});

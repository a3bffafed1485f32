// A rank's kill reaches its whole tree: a child that left the rank's process group
// (setsid) is killed too. It matters most for a criu checkpoint that ends the job:
// the dump leaves the rank's whole tree stopped and a signal to the group alone
// would leave such a child stopped for ever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT_CHECKPOINTED, launchJob } from '../../dist/runtime/launcher.js';
import { alive, eventually, fixture, needCriu, procState, tempDir } from '../helpers.js';

const SIZE = 2;

test('criu, a checkpoint that ends the job: the ranks\' children in sessions of their own are killed, not left stopped', async (t) => {
  if (!(await needCriu(t))) return;
  const dir = tempDir(t);
  const pidFile = join(dir, 'child');
  const job = await launchJob({
    command: process.execPath,
    args: [fixture('jobs/setsid-child.mjs')],
    size: SIZE,
    name: `tree${process.pid}`,
    crs: 'criu',
    store: join(dir, 'store'),
    register: false,
    output: { mode: 'events' },
    env: { CHILD_PID_FILE: pidFile },
  });
  t.after(() => job.kill());
  const files = [...Array(SIZE).keys()].map((r) => `${pidFile}.${r}`);
  assert.ok(await eventually(() => files.every((f) => existsSync(f) && readFileSync(f, 'utf8') !== ''), 60_000), 'every rank started its child');
  const children = files.map((f) => Number(readFileSync(f, 'utf8')));
  t.after(() => {
    for (const pid of children) if (pid > 1 && alive(pid)) process.kill(pid, 'SIGKILL');
  });
  await job.checkpoint({ then: 'terminate' });
  const ended = await job.wait();
  assert.equal(ended.status, EXIT_CHECKPOINTED, ended.error?.message);
  // Killed (then reaped by init: allow it a moment), never left stopped.
  const gone = await eventually(() => children.every((pid) => !alive(pid) || procState(pid) === 'Z'), 30_000);
  assert.ok(gone, `children left: ${children.map((p) => `${p} ${procState(p) ?? 'gone'}`).join(', ')}`);
});

// `ckpt checkpoint JOB --stop`, then `ckpt resume JOB`, for each kind of job: a rank
// job (every rank stopped, then continued through its coordinator) and an isolated
// job whose command has a child (every process of the tree stopped, then each one
// continued). Progress is read from what the processes write, polled with a deadline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ckpt, ckptProgram, eventually, fixture, needCriu, procState, root, tempDir } from '../helpers.js';

const stateEnv = (dir: string) => ({ CKPT_STATE_DIR: join(dir, 'state') });

/** Lines appended so far to a file (0 while it does not exist). */
function count(file: string): number {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

test('a rank job: checkpoint --stop stops every rank; ckpt resume JOB lets each go on', async (t) => {
  const dir = tempDir(t);
  const name = `resume-${process.pid}`;
  const ticker = join(root, 'test', 'fixtures', 'jobs', 'ticker.mjs');
  const run = ckptProgram(['run', '-n', '2', '--crs', 'self', '--name', name, '--dir', join(dir, 'store'), '--', process.execPath, ticker, '--print'], stateEnv(dir));
  t.after(() => run.kill('SIGTERM'));
  const pids: number[] = [];
  for (const r of [0, 1]) pids.push(Number(/ (\d+)$/.exec(await run.waitFor(new RegExp(`^\\[${r}\\] ready ${r} \\d+$`)))![1]));
  const lastTick = (r: number): number => Math.max(0, ...run.lines.map((l) => new RegExp(`^\\[${r}\\] tick ${r} (\\d+)$`).exec(l)).filter(Boolean).map((m) => Number(m![1])));
  assert.ok(await eventually(() => lastTick(0) >= 20 && lastTick(1) >= 20, 60_000), 'both ranks tick');

  const stopped = await ckpt(['checkpoint', name, '--stop', '--json'], stateEnv(dir));
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.ok(await eventually(() => pids.every((p) => procState(p) === 'T'), 30_000), `every rank stopped: ${pids.map(procState).join(',')}`);
  const at = [lastTick(0), lastTick(1)];

  const resumed = await ckpt(['resume', name, '--json'], stateEnv(dir));
  assert.equal(resumed.code, 0, resumed.stderr);
  const out = JSON.parse(resumed.stdout) as { name: string; pids: number[]; via: string };
  assert.equal(out.name, name);
  assert.equal(out.pids.length, 2);
  assert.equal(out.via, 'coordinator');
  assert.ok(await eventually(() => lastTick(0) >= at[0]! + 30 && lastTick(1) >= at[1]! + 30, 60_000), `both ranks go on past ${at.join(',')}`);
  run.child.kill('SIGTERM');
  assert.equal((await run.exited).code, 143, run.stderr);
});


/** Pids of the shells running `script` (not the launcher, whose command line names it too). */
function shellsRunning(script: string): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith(`sh\0${script}\0`);
    } catch {
      return false;
    }
  });
}

test('an isolated job with a child: checkpoint --stop stops the whole tree; ckpt resume JOB resumes every process of it', async (t) => {
  if (!(await needCriu(t))) return;
  // Outside /tmp (private inside an isolated job); removed once the job is gone (it writes there until then).
  const dir = mkdtempSync('/var/tmp/ckpt-resume-test-');
  const env = stateEnv(tempDir(t));
  const script = join(dir, 'tree-writer.sh');
  copyFileSync(fixture('process/tree-writer.sh'), script);
  const name = `isoresume-${process.pid}`;
  const job = ckptProgram(['run', '--isolate', '--name', name, '--', 'sh', script, dir], env, dir);
  t.after(async () => {
    if (job.child.exitCode === null) await ckpt(['kill', name], env);
    await job.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });
  assert.ok(await eventually(() => count(join(dir, 'parent')) >= 3 && count(join(dir, 'child')) >= 3, 60_000), `both write: ${job.stderr}`);

  const stopped = await ckpt(['checkpoint', name, '--stop', '--json'], env);
  assert.equal(stopped.code, 0, stopped.stderr);
  const shells = shellsRunning(script);
  assert.ok(shells.length >= 2, `parent and child: ${shells.join(',')}`);
  assert.ok(await eventually(() => shells.every((p) => procState(p) === 'T'), 30_000), `all stopped: ${shells.map(procState).join(',')}`);
  const at = { parent: count(join(dir, 'parent')), child: count(join(dir, 'child')) };

  const resumed = await ckpt(['resume', name, '--json'], env);
  assert.equal(resumed.code, 0, resumed.stderr);
  const out = JSON.parse(resumed.stdout) as { pids: number[] };
  for (const pid of shells) assert.ok(out.pids.includes(pid), `${pid} resumed (${out.pids.join(',')})`);
  assert.ok(await eventually(() => count(join(dir, 'parent')) >= at.parent + 3 && count(join(dir, 'child')) >= at.child + 3, 60_000), 'parent and child go on');
  assert.equal((await ckpt(['kill', name], env)).code, 0);
  await job.exited;
});

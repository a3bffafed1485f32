// `ckpt resume PID` after `ckpt checkpoint --pid P --stop` resumes the whole tree (a
// SIGCONT to its root alone leaves its children stopped), and `--term` ends a
// process as it ends a job: after the snapshot, with a SIGTERM it may handle.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ckpt, eventually, fixture, needCriu, procState, Program, tempDir } from '../helpers.js';

/** Lines appended so far to a file of tree-writer.sh (0 while it does not exist). */
function count(file: string): number {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

/**
 * tree-writer.sh: a parent and its subshell child, each counting into a file of a
 * directory of its own (removed once they are killed: they write into it until then).
 */
async function startTree(t: TestContext): Promise<{ program: Program; child: number; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-tree-'));
  const program = new Program(fixture('process/tree-writer.sh'), [dir], {}, { session: true });
  t.after(async () => {
    await program.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  assert.ok(await eventually(() => count(join(dir, 'parent')) >= 3 && count(join(dir, 'child')) >= 3), 'both write');
  // The subshell: the parent's child that is a shell too (the others are its sleeps).
  const comm = (pid: number) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  const kids = readFileSync(`/proc/${program.pid}/task/${program.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  const child = kids.find((pid) => {
    try {
      return comm(pid) === comm(program.pid);
    } catch {
      return false;
    }
  });
  assert.ok(child && child > 1, `the subshell among ${kids.join(',')}`);
  return { program, child, dir };
}

/** Waits until a file has grown by `by` lines past `from` (bounded). */
async function grows(file: string, from: number, by = 3): Promise<void> {
  assert.ok(await eventually(() => count(file) >= from + by, 60_000), `${file} grows past ${from} (at ${count(file)})`);
}

test('--stop stops parent and child; a SIGCONT to the parent alone leaves the child stopped; ckpt resume PID resumes it', async (t) => {
  if (!(await needCriu(t))) return;
  const { program, child, dir } = await startTree(t);
  const r = await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', join(tempDir(t), 'store'), '--stop']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`ckpt resume ${program.pid}`));
  assert.equal(procState(program.pid), 'T');
  assert.equal(procState(child), 'T');

  // What README warns about: SIGCONT reaches only the process it is sent to (the
  // parent then waits on its own stopped sleep: the tree still does not progress).
  process.kill(program.pid, 'SIGCONT');
  assert.ok(await eventually(() => procState(program.pid) !== 'T'), 'the parent is no longer stopped');
  assert.equal(procState(child), 'T', 'the child is still stopped');
  const childAt = count(join(dir, 'child'));

  const resumed = await ckpt(['resume', String(program.pid), '--json']);
  assert.equal(resumed.code, 0, resumed.stderr);
  const out = JSON.parse(resumed.stdout) as { pid: number; pids: number[] };
  assert.equal(out.pid, program.pid);
  assert.ok(out.pids.includes(child), `the child was resumed: ${out.pids.join(',')}`);
  assert.ok(!out.pids.includes(program.pid), 'the running parent was left alone');
  await grows(join(dir, 'child'), childAt);
  await grows(join(dir, 'parent'), count(join(dir, 'parent')));
});

test('ckpt resume of a tree that is not stopped signals nothing; of pid 1 is refused', async (t) => {
  const program = new Program('sleep', ['1000'], {}, { session: true });
  t.after(() => program.kill());
  const r = await ckpt(['resume', String(program.pid), '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as { pids: number[] }).pids, []);
  const one = await ckpt(['resume', '1']);
  assert.notEqual(one.code, 0);
  assert.match(one.stderr, /ECKPT_UNSAFE_PID/);
});

test('--term: committed, then every process of the tree gets SIGTERM and handles it; the snapshot is whole', async (t) => {
  if (!(await needCriu(t))) return;
  const store = join(tempDir(t), 'store');
  const { program, dir } = await startTree(t);
  const r = await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store, '--term', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { endState: string }).endState, 'terminate');
  const exit = await program.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, 'the parent ran its SIGTERM handler (exit 0), not killed');
  assert.equal(readFileSync(join(dir, 'term-parent'), 'utf8'), 'term\n');
  assert.ok(await eventually(() => count(join(dir, 'term-child')) === 1), 'the child handled its SIGTERM too');
  const verify = await ckpt(['snapshots', 'verify', store]);
  assert.equal(verify.code, 0, verify.stderr);
});

test('--term and --kill together are a usage error (exit 2)', async () => {
  const r = await ckpt(['checkpoint', '--pid', String(process.pid), '--dir', '/nonexistent', '--term', '--kill']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /choose one of/);
});

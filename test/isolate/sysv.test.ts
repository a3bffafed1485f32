// System V IPC in an isolated job: the job has an IPC namespace of its own, so a
// program using shmget/shmat and semaphores is dumped and restored with its
// segments, and copies side by side each get their own namespace (a fixed key
// created with IPC_EXCL would clash in a shared one).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ckpt, ckptProgram, fixture, needCriu, tempDir, type Program } from '../helpers.js';

function buildDir(t: TestContext): string {
  const dir = mkdtempSync('/var/tmp/ckpt-iso-test-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function buildSysv(t: TestContext): string {
  const exe = join(buildDir(t), 'sysv');
  execFileSync('gcc', ['-O2', '-o', exe, fixture('isolate/sysv.c')]);
  return exe;
}

const counts = (lines: string[]): number[] => lines.map((l) => /^shm (\d+) /.exec(l)?.[1]).filter(Boolean).map(Number);

function assertConsecutive(values: number[], from: number, to: number, what: string): void {
  assert.ok(values.length > 0, `${what}: printed something`);
  assert.equal(values[0], from, `${what}: starts at ${from}`);
  values.forEach((n, i) => assert.equal(n, from + i, `${what}: consecutive at ${i}`));
  assert.equal(values.at(-1), to, `${what}: ends at ${to}`);
}

interface PsEntry {
  name: string;
  isolated: { rootPid: number; restoredFrom: string | null };
}

async function jobsNamed(env: NodeJS.ProcessEnv, name: string): Promise<PsEntry[]> {
  const r = await ckpt(['ps', '--json'], env);
  return (JSON.parse(r.stdout).jobs as PsEntry[]).filter((j) => j.name === name);
}

const ipcNs = (pid: number): string => readlinkSync(`/proc/${pid}/ns/ipc`);

test('SysV shared memory and semaphores: --isolate gives the job its own IPC namespace; checkpoint --term and restart go on', async (t) => {
  if (!(await needCriu(t))) return;
  const env = { CKPT_STATE_DIR: join(tempDir(t), 'state') };
  const store = join(tempDir(t), 'store');
  const exe = buildSysv(t);
  const job = ckptProgram(['run', '--isolate', '--net', '--name', 'shm', '--', exe, '200'], env, buildDir(t));
  t.after(() => job.kill());
  await job.waitFor(/^shm 10 /);
  const [listed] = await jobsNamed(env, 'shm');
  assert.ok(listed);
  assert.notEqual(ipcNs(listed.isolated.rootPid), readlinkSync('/proc/self/ns/ipc'), 'not the host IPC namespace');
  const r = await ckpt(['checkpoint', 'shm', '--dir', store, '--term', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await job.exited).code, 85); // ended at its checkpoint
  const before = counts(job.lines).at(-1)!;
  const restarted = ckptProgram(['restart', store], env);
  t.after(() => restarted.kill());
  const exit = await restarted.exited;
  assert.equal(exit.code, 5, `the program's own status: ${restarted.stderr} ${restarted.lines.join('|')}`);
  // The counter lives in the shared segment: it goes on from the dumped value.
  assertConsecutive(counts(restarted.lines), before + 1, 200, 'restored counter');
  assert.equal(restarted.lines.at(-1), 'done');
});

test('SysV IPC: two restored copies and the original run side by side, each in its own IPC namespace', async (t) => {
  if (!(await needCriu(t))) return;
  const env = { CKPT_STATE_DIR: join(tempDir(t), 'state') };
  const store = join(tempDir(t), 'store');
  const exe = buildSysv(t);
  const job = ckptProgram(['run', '--isolate', '--net', '--name', 'shmcopies', '--', exe, '400'], env, buildDir(t));
  t.after(() => job.kill());
  await job.waitFor(/^shm 10 /);
  const seenBefore = counts(job.lines).at(-1)!;
  const r = await ckpt(['checkpoint', 'shmcopies', '--dir', store, '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  const copies: Program[] = [ckptProgram(['restart', store], env), ckptProgram(['restart', store], env)];
  for (const c of copies) t.after(() => c.kill());
  await Promise.all(copies.map((c) => c.waitFor(/^shm \d+ /)));
  const jobs = await jobsNamed(env, 'shmcopies');
  const live = jobs.map((j) => { try { return ipcNs(j.isolated.rootPid); } catch { return undefined; } }).filter(Boolean);
  // A copy may already be done; those still running each have their own namespace.
  assert.equal(new Set(live).size, live.length, `distinct IPC namespaces: ${live.join(' ')}`);
  assert.ok(!live.includes(readlinkSync('/proc/self/ns/ipc')));
  for (const p of [job, ...copies]) {
    const exit = await p.exited;
    assert.equal(exit.code, 5, `${p.stderr} ${p.lines.slice(-3).join('|')}`);
  }
  // Each copy's counter is its own: none sees another's increments.
  assertConsecutive(counts(job.lines), 1, 400, 'original');
  const firsts = copies.map((c) => counts(c.lines)[0]!);
  assert.equal(firsts[0], firsts[1], 'both copies start from the snapshot\'s value');
  assert.ok(firsts[0]! > seenBefore, `the snapshot was taken after ${seenBefore} was printed (${firsts[0]})`);
  for (const c of copies) assertConsecutive(counts(c.lines), firsts[0]!, 400, 'copy');
});

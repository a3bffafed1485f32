// Transparent mode: whole process trees in their own namespaces (ckpt run --isolate),
// checkpointed and restarted with real CRIU — a C program, a Node tree, a real
// Open MPI job, copies side by side, and a failed restore that leaves nothing behind.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ckpt, ckptProgram, eventually, fixture, needCriu, procState, tempDir, type Program } from '../helpers.js';

/** Programs must live outside /tmp: /tmp is private (empty) inside an isolated job. */
function buildDir(t: TestContext): string {
  const dir = mkdtempSync('/var/tmp/ckpt-iso-test-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A private state directory (job registry, output dirs) per test. */
function stateEnv(t: TestContext): NodeJS.ProcessEnv {
  return { CKPT_STATE_DIR: join(tempDir(t), 'state') };
}

function buildTicker(t: TestContext): string {
  const exe = join(buildDir(t), 'ticker');
  execFileSync('gcc', ['-O2', '-o', exe, fixture('process/ticker.c')]);
  return exe;
}

const tickOf = (line: string | undefined): number => Number(/^tick (\d+)$/.exec(line ?? '')?.[1] ?? NaN);
const ticks = (lines: string[]): number[] => lines.filter((l) => l.startsWith('tick')).map(tickOf);

function assertConsecutive(values: number[], what: string): void {
  values.forEach((n, i) => assert.equal(n, values[0]! + i, `${what}: consecutive (${values.slice(Math.max(0, i - 2), i + 2).join(',')})`));
}

/**
 * A fixture copied outside /tmp: the checkout itself may live under /tmp (CI clones
 * anywhere), and /tmp is private inside an isolated job.
 */
function isoFixture(t: TestContext, name: string): string {
  const copy = join(buildDir(t), basename(name));
  copyFileSync(fixture(name), copy);
  return copy;
}

function runIsolated(t: TestContext, env: NodeJS.ProcessEnv, args: string[]): Program {
  // The job's working directory must be visible inside it: not under /tmp.
  const p = ckptProgram(['run', '--isolate', ...args], env, buildDir(t));
  t.after(() => p.kill());
  return p;
}

async function checkpointJob(env: NodeJS.ProcessEnv, job: string, store: string, ...flags: string[]): Promise<Record<string, unknown>> {
  const r = await ckpt(['checkpoint', job, '--dir', store, '--json', ...flags], env);
  assert.equal(r.code, 0, `checkpoint: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

function restart(t: TestContext, env: NodeJS.ProcessEnv, ...args: string[]): Program {
  const p = ckptProgram(['restart', ...args], env);
  t.after(() => p.kill());
  return p;
}

/** Every pid namespace and net namespace in use on the machine right now. */
function namespaces(): { pid: Set<string>; net: Set<string>; ipc: Set<string>; user: Set<string> } {
  const pid = new Set<string>();
  const net = new Set<string>();
  const ipc = new Set<string>();
  const user = new Set<string>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      pid.add(readlinkSync(`/proc/${name}/ns/pid`));
      net.add(readlinkSync(`/proc/${name}/ns/net`));
      ipc.add(readlinkSync(`/proc/${name}/ns/ipc`));
      user.add(readlinkSync(`/proc/${name}/ns/user`));
    } catch {
      // gone
    }
  }
  return { pid, net, ipc, user };
}

/** Pids of the processes running the executable `exe` (seen from here, through /proc). */
function processesRunning(exe: string): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).filter((pid) => {
    try {
      return readlinkSync(`/proc/${pid}/exe`) === exe;
    } catch {
      return false;
    }
  });
}

function nftTables(): Set<string> {
  return new Set(execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('CRIU-')));
}

test('a C program: run --isolate, ps lists it, checkpoint --term, restart goes on from the next tick with its exit status', async (t) => {
  if (!(await needCriu(t))) return;
  const env = stateEnv(t);
  const store = join(tempDir(t), 'store');
  const job = runIsolated(t, env, ['--net', '--name', 'cprog', '--', buildTicker(t), '150']);
  await job.waitFor(/^tick 10$/);
  const ps = await ckpt(['ps', '--json'], env);
  const listed = (JSON.parse(ps.stdout).jobs as { name: string; kind: string; isolated: { rootPid: number; net: boolean } }[]).find((j) => j.name === 'cprog');
  assert.ok(listed, ps.stdout);
  assert.equal(listed.kind, 'isolated');
  assert.equal(listed.isolated.net, true);
  const out = await checkpointJob(env, 'cprog', store, '--term');
  assert.equal(out.endState, 'terminate');
  assert.equal(out.processes, 2, 'pid 1 of the job and the program');
  const exit = await job.exited;
  assert.equal(exit.code, 85, 'the job ended at its checkpoint (EXIT_CHECKPOINTED)');
  const before = ticks(job.lines).at(-1)!;
  const restarted = restart(t, env, store);
  const rexit = await restarted.exited;
  assert.equal(rexit.code, 7, `restart exits with the program's status: ${restarted.stderr}`);
  const after = ticks(restarted.lines);
  assert.equal(after[0], before + 1, 'nothing lost, nothing repeated');
  assertConsecutive(after, 'restarted ticks');
  assert.equal(after.at(-1), 150);
  assert.equal(restarted.lines.at(-1), 'done');
});

test('--isolate --checkpoint-signal USR1: the whole tree checkpointed, the job ends with 85; the restart goes on from the next tick', async (t) => {
  if (!(await needCriu(t))) return;
  const env = stateEnv(t);
  const job = runIsolated(t, env, ['--net', '--name', 'sigprog', '--checkpoint-signal', 'USR1', '--', buildTicker(t), '300']);
  await job.waitFor(/^tick 10$/);
  job.child.kill('SIGUSR1');
  const exit = await job.exited;
  assert.equal(exit.code, 85, job.stderr);
  const snapshot = /checkpointed into (\S+) \(seq 1\)/.exec(job.stderr)?.[1];
  assert.ok(snapshot, job.stderr);
  const before = ticks(job.lines).at(-1)!;
  const restarted = restart(t, env, snapshot);
  assert.equal((await restarted.exited).code, 7, restarted.stderr);
  assert.equal(ticks(restarted.lines)[0], before + 1, 'nothing lost, nothing repeated');
});

test('--isolate --resume --max-restarts 1: the program killed inside the job is restored from the newest snapshot; the same line later resumes', async (t) => {
  if (!(await needCriu(t))) return;
  const env = stateEnv(t);
  const line = ['--net', '--name', 'resprog', '--resume', '--max-restarts', '1', '--', buildTicker(t), '300'];
  const job = runIsolated(t, env, line);
  await job.waitFor(/^tick 10$/);
  assert.match(job.stderr, /no snapshot in .* yet: starting the job/);
  const cp = await ckpt(['checkpoint', 'resprog', '--json'], env);
  assert.equal(cp.code, 0, cp.stderr || cp.stdout);
  const listed = (JSON.parse((await ckpt(['ps', '--json'], env)).stdout).jobs as { name: string; isolated: { rootPid: number } }[]).find((j) => j.name === 'resprog')!;
  const root = listed.isolated.rootPid;
  const program = Number(readFileSync(`/proc/${root}/task/${root}/children`, 'utf8').trim().split(' ')[0]);
  assert.ok(program > 1);
  process.kill(program, 'SIGKILL');
  const exit = await job.exited;
  assert.equal(exit.code, 7, job.stderr);
  assert.match(job.stderr, /exited with status 137; restarting from snapshot 1 \(restart 1 of 1\)/);
  assert.equal(ticks(job.lines).at(-1), 300);
  // The same line again: the store holds a snapshot, so it resumes from it.
  const again = runIsolated(t, env, line);
  assert.equal((await again.exited).code, 7, again.stderr);
  assert.match(again.stderr, /resuming job resprog from snapshot 1/);
  assert.equal(ticks(again.lines).at(-1), 300);
});

test('a C program: --stop leaves the job stopped until ckpt resume; the default store and continue mode work', async (t) => {
  if (!(await needCriu(t))) return;
  const env = stateEnv(t);
  // 300 ticks (6 s): the job must still run when the --stop checkpoint freezes it, on a loaded machine too.
  const exe = buildTicker(t);
  const job = runIsolated(t, env, ['--name', 'stopper', '--', exe, '300']);
  await job.waitFor(/^tick 5$/);
  const stopped = await ckpt(['checkpoint', 'stopper', '--stop', '--json'], env);
  assert.equal(stopped.code, 0, stopped.stderr);
  const snap = JSON.parse(stopped.stdout) as { snapshot: string; store: string };
  assert.equal(snap.store, join(env.CKPT_STATE_DIR!, 'snapshots', 'stopper'), 'default store under the state dir');
  // Left stopped: the program is in state T (it cannot print) until the resume.
  const program = processesRunning(exe);
  assert.ok(program.length > 0, 'the program is still there');
  const allStopped = () => program.every((pid) => /^[Tt]$/.test(procState(pid) ?? ''));
  assert.ok(await eventually(allStopped, 5_000), `a stopped job runs nothing: ${program.map(procState).join(',')}`);
  const frozenAt = ticks(job.lines).at(-1)!;
  const resumed = await ckpt(['resume', 'stopper'], env);
  assert.equal(resumed.code, 0, resumed.stderr);
  await job.waitFor(new RegExp(`^tick ${frozenAt + 5}$`));
  assertConsecutive(ticks(job.lines), 'ticks across the stop and the resume');
  const cont = await ckpt(['checkpoint', 'stopper'], env);
  assert.equal(cont.code, 0, cont.stderr);
  assert.match(cont.stdout, /left running/);
  const exit = await job.exited;
  assert.equal(exit.code, 7);
  assertConsecutive(ticks(job.lines), 'the original never lost a tick');
  // The first snapshot (taken stopped) restarts too.
  const restarted = restart(t, env, snap.snapshot);
  assert.equal((await restarted.exited).code, 7, restarted.stderr);
  assert.equal(ticks(restarted.lines)[0], frozenAt + 1);
});

test('two restored copies of one snapshot run side by side with the original (--net)', async (t) => {
  if (!(await needCriu(t))) return;
  const env = stateEnv(t);
  const store = join(tempDir(t), 'store');
  const job = runIsolated(t, env, ['--net', '--name', 'orig', '--', 'node', isoFixture(t, 'isolate/tree.mjs'), '1500']);
  await job.waitFor(/^count tcp=[1-9]\d+ /);
  await checkpointJob(env, 'orig', store);
  const copies = [restart(t, env, store), restart(t, env, store)];
  // All three at once: each copy has its own pid, mount and network namespaces.
  await Promise.all(copies.map((c) => c.waitFor(/^count /)));
  const ps = JSON.parse((await ckpt(['ps', '--json'], env)).stdout).jobs as { name: string; isolated?: { restoredFrom: string | null } }[];
  assert.equal(ps.filter((j) => j.name === 'orig').length, 3, 'the original and both copies are listed');
  assert.equal(ps.filter((j) => j.isolated?.restoredFrom).length, 2);
  for (const p of [job, ...copies]) {
    const exit = await p.exited;
    assert.equal(exit.code, 3, p.stderr);
    assert.ok(!p.lines.some((l) => l.startsWith('GAP')), p.lines.join('\n'));
    assert.match(p.lines.at(-1)!, /^done tcp=\d+ unix=\d+ worker=\d+$/);
  }
});

test('a Node tree (worker thread, child processes over TCP and unix sockets) continues without loss', async (t) => {
  if (!(await needCriu(t))) return;
  const env = stateEnv(t);
  const store = join(tempDir(t), 'store');
  const job = runIsolated(t, env, ['--net', '--name', 'nodetree', '--', 'node', isoFixture(t, 'isolate/tree.mjs'), '600']);
  await job.waitFor(/^count tcp=[1-9]\d\d+ /);
  const out = await checkpointJob(env, 'nodetree', store, '--term');
  assert.equal(out.processes, 4, 'node parent, two children, pid 1');
  assert.equal((await job.exited).code, 85); // ended at its checkpoint
  const last = job.lines.filter((l) => l.startsWith('count')).at(-1)!;
  const count = (line: string, k: string) => Number(new RegExp(`${k}=(\\d+)`).exec(line)?.[1]);
  const restarted = restart(t, env, store);
  const exit = await restarted.exited;
  assert.equal(exit.code, 3, `${restarted.stderr} ${restarted.lines.join('|')}`);
  assert.ok(!restarted.lines.some((l) => l.startsWith('GAP')), 'every stream gap-free across the restart');
  const first = restarted.lines.find((l) => l.startsWith('count'))!;
  for (const k of ['tcp', 'unix', 'worker']) assert.ok(count(first, k) >= count(last, k), `${k} goes on from the snapshot (${last} → ${first})`);
  assert.match(restarted.lines.at(-1)!, /^done /);
});

test('Open MPI: mpirun -np 4 checkpointed mid-run, killed and restarted prints exactly what an uninterrupted run prints', async (t) => {
  if (!(await needCriu(t))) return;
  const env = stateEnv(t);
  const dir = buildDir(t);
  const exe = join(dir, 'ring');
  execFileSync('mpicc', ['-O2', '-o', exe, fixture('isolate/ring.c')]);
  const ROUNDS = '200';
  const reference = runIsolated(t, env, ['--net', '--', 'mpirun', '-np', '4', exe, ROUNDS]);
  assert.equal((await reference.exited).code, 0, reference.stderr);
  assert.equal(reference.lines.at(-1), 'done 4 ranks');

  const store = join(tempDir(t), 'store');
  const job = runIsolated(t, env, ['--net', '--name', 'mpi', '--', 'mpirun', '-np', '4', exe, ROUNDS]);
  await job.waitFor(/^round 40 /);
  const out = await checkpointJob(env, 'mpi', store, '--term');
  assert.ok((out.processes as number) >= 6, `mpirun, 4 ranks and pid 1 (${out.processes})`);
  assert.equal((await job.exited).code, 85); // ended at its checkpoint
  assert.notEqual(job.lines.at(-1), 'done 4 ranks', 'checkpointed mid-run');
  const restarted = restart(t, env, store);
  const exit = await restarted.exited;
  assert.equal(exit.code, 0, restarted.stderr);
  assert.deepEqual([...job.lines, ...restarted.lines], reference.lines);
});

test('a failed restore (corrupted image) leaves no processes, namespaces or lock tables behind', async (t) => {
  if (!(await needCriu(t))) return;
  const env = stateEnv(t);
  const store = join(tempDir(t), 'store');
  // Without --net the job's TCP connections are in the host's network namespace:
  // the --term dump leaves CRIU's lock table there for the restore.
  const job = runIsolated(t, env, ['--name', 'victim', '--', 'node', isoFixture(t, 'isolate/tree.mjs'), '100000']);
  await job.waitFor(/^count tcp=[1-9]\d+ /);
  const before = { ns: namespaces(), tables: nftTables() };
  const out = await checkpointJob(env, 'victim', store, '--term');
  await job.exited;
  const manifest = JSON.parse(readFileSync(join(out.snapshot as string, 'manifest.json'), 'utf8'));
  const runId = manifest.process.isolation.dumpRunId as string;
  assert.ok(runId, 'the dump run id is recorded');
  assert.ok([...nftTables()].some((l) => l.includes(`CRIU-${runId.slice(0, 21)}`)), 'the dump left its lock table');

  // Damage the core image of a process other than pid 1: CRIU fails after it made
  // the namespaces and forked the tree.
  const images = join(out.snapshot as string, 'images');
  const core = readdirSync(images).filter((f) => /^core-\d+\.img$/.test(f) && f !== 'core-1.img')[0]!;
  const bytes = readFileSync(join(images, core));
  bytes.fill(0xff, 12);
  writeFileSync(join(images, core), bytes);

  const verified = await ckpt(['restart', store], env);
  assert.notEqual(verified.code, 0);
  assert.match(verified.stderr, /ECKPT_SNAPSHOT_CORRUPT/, 'checksums catch it first');

  const r = await ckpt(['restart', store, '--no-verify'], env);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^ckpt: CRIU restore of the isolated job failed: .*core-\d+\.img/);
  assert.match(r.stderr, /damaged/, 'with a hint');
  assert.match(r.stderr, /ECKPT_CRIU_FAILED/);
  // The restore's last processes may still be torn down by the kernel: wait (bounded)
  // until no namespace of it is left, then check each kind and the rest.
  const leftover = () => {
    const now = namespaces();
    return (['pid', 'net', 'ipc', 'user'] as const).some((k) => [...now[k]].some((n) => !before.ns[k].has(n)));
  };
  await eventually(() => !leftover(), 10_000, 50);
  const after = { ns: namespaces(), tables: nftTables() };
  const newPidNs = [...after.ns.pid].filter((n) => !before.ns.pid.has(n));
  const newNetNs = [...after.ns.net].filter((n) => !before.ns.net.has(n));
  assert.deepEqual(newPidNs, [], 'no pid namespace of the restore is left');
  assert.deepEqual(newNetNs, [], 'no network namespace is left');
  assert.deepEqual([...after.ns.ipc].filter((n) => !before.ns.ipc.has(n)), [], 'no IPC namespace is left');
  assert.deepEqual([...after.ns.user].filter((n) => !before.ns.user.has(n)), [], 'no user namespace is left');
  assert.ok(![...after.tables].some((l) => l.includes(`CRIU-${runId.slice(0, 21)}`)), 'the lock table is gone');
  const ps = JSON.parse((await ckpt(['ps', '--json'], env)).stdout).jobs as unknown[];
  assert.deepEqual(ps, [], 'no job is left registered');
  const isolatedDir = join(env.CKPT_STATE_DIR!, 'isolated');
  assert.deepEqual(existsSync(isolatedDir) ? readdirSync(isolatedDir) : [], [], 'no output directory is left');
});

test('bad input: a rank job option with --isolate, a program under /tmp, an unknown job', async (t) => {
  const env = stateEnv(t);
  const a = await ckpt(['run', '--isolate', '-n', '2', '--', 'true'], env);
  assert.equal(a.code, 2, a.stderr);
  const tmpProg = join(tempDir(t), 'prog');
  writeFileSync(tmpProg, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  const b = await ckpt(['run', '--isolate', '--', tmpProg], env);
  assert.notEqual(b.code, 0);
  assert.match(b.stderr, /private .* inside an isolated job/);
  const c = await ckpt(['checkpoint', 'no-such-job'], env);
  assert.notEqual(c.code, 0);
  assert.match(c.stderr, /ECKPT_JOB_NOT_FOUND/);
});

test('as root, the set-up of an isolated job takes no tool from a PATH entry another user can write; the program gets its PATH whole', async (t) => {
  if (!(await needCriu(t)) || process.geteuid?.() !== 0) return;
  const open = buildDir(t);
  chmodSync(open, 0o777);
  const marker = join(open, 'ran');
  // A `mount` another user could have put there: it would run as root.
  writeFileSync(join(open, 'mount'), `#!/bin/sh\ntouch ${marker}\nexec /usr/bin/mount "$@"\n`, { mode: 0o755 });
  const path = `${open}:${process.env.PATH}`;
  const job = runIsolated(t, { ...stateEnv(t), PATH: path }, ['--', '/bin/sh', '-c', 'echo "PATH=$PATH"']);
  const exit = await job.exited;
  assert.equal(exit.code, 0, job.stderr);
  assert.ok(job.lines.includes(`PATH=${path}`), job.lines.join('\n'));
  assert.equal(existsSync(marker), false, 'the planted mount ran');
});

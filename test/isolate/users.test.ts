// Other users' processes in transparent mode. Root on these machines lacks
// CAP_SYS_RESOURCE: CRIU's prlimit(2) on another user's process is refused, so a
// tree holding one cannot be dumped as such. `ckpt run --isolate` runs the job in
// a user namespace owned by root (identity uid/gid map), where it can.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ckpt, ckptProgram, fixture, isOneLineError, needCriu, tempDir, testUser } from '../helpers.js';

function buildDir(t: TestContext): string {
  const dir = mkdtempSync('/var/tmp/ckpt-iso-test-');
  execFileSync('chmod', ['0755', dir]);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function buildSysv(t: TestContext): string {
  const exe = join(buildDir(t), 'sysv');
  execFileSync('gcc', ['-O2', '-o', exe, fixture('isolate/sysv.c')]);
  execFileSync('chmod', ['0755', exe]);
  return exe;
}

const counts = (lines: string[]): number[] => lines.map((l) => /^shm (\d+) /.exec(l)?.[1]).filter(Boolean).map(Number);

function capSysResource(): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? (BigInt(`0x${m[1]}`) & (1n << 24n)) !== 0n : false;
}

/** Every process below `pid` (children files), with its real uid. */
function treeUids(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  const walk = (p: number) => {
    try {
      out.set(p, Number(/^Uid:\s*(\d+)/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))![1]));
      for (const tid of execFileSync('ls', [`/proc/${p}/task`], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
        for (const c of readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean)) walk(Number(c));
      }
    } catch {
      // gone
    }
  };
  walk(pid);
  return out;
}

interface PsEntry {
  name: string;
  isolated: { rootPid: number; restoredFrom: string | null };
}

async function job(env: NodeJS.ProcessEnv, name: string): Promise<PsEntry> {
  const r = await ckpt(['ps', '--json'], env);
  const found = (JSON.parse(r.stdout).jobs as PsEntry[]).find((j) => j.name === name);
  assert.ok(found, r.stdout);
  return found;
}

test("another user's process in an isolated job: checkpoint --term and restart without CAP_SYS_RESOURCE; it runs on as that user", async (t) => {
  if (!(await needCriu(t))) return;
  const user = testUser();
  const env = { CKPT_STATE_DIR: join(tempDir(t), 'state') };
  const store = join(tempDir(t), 'store');
  const exe = buildSysv(t);
  const setpriv = ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups'];
  const run = ckptProgram(['run', '--isolate', '--net', '--name', 'asuser', '--', ...setpriv, exe, '200'], env, buildDir(t));
  t.after(() => run.kill());
  await run.waitFor(/^shm 10 /);
  const root = (await job(env, 'asuser')).isolated.rootPid;
  assert.notEqual(readlinkSync(`/proc/${root}/ns/user`), readlinkSync('/proc/self/ns/user'), 'the job has a user namespace of its own');
  assert.equal(readFileSync(`/proc/${root}/uid_map`, 'utf8').trim().split(/\s+/).join(' '), '0 0 4294967295', 'identity map');
  assert.ok([...treeUids(root).values()].includes(user.uid), 'a process of the test user is in the tree');
  const r = await ckpt(['checkpoint', 'asuser', '--dir', store, '--term', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await run.exited).code, 85); // ended at its checkpoint
  const before = counts(run.lines).at(-1)!;
  const tempDirs = () => new Set(execFileSync('sh', ['-c', 'ls -d /tmp/cr-tmpfs.* 2>/dev/null || true'], { encoding: 'utf8' }).split('\n').filter(Boolean));
  const dirsBefore = tempDirs();
  const restarted = ckptProgram(['restart', store], env);
  t.after(() => restarted.kill());
  await restarted.waitFor(/^shm \d+ /);
  const restoredRoot = (await job(env, 'asuser')).isolated.rootPid;
  const uids = treeUids(restoredRoot);
  assert.ok([...uids.values()].includes(user.uid), `the restored process runs as uid ${user.uid}: ${JSON.stringify([...uids])}`);
  const exit = await restarted.exited;
  assert.equal(exit.code, 5, `${restarted.stderr} ${restarted.lines.slice(-3).join('|')}`);
  const after = counts(restarted.lines);
  assert.equal(after[0], before + 1, 'the shared counter goes on');
  assert.equal(after.at(-1), 200);
  // CRIU leaves its (empty) temporary directory after a restore into a user namespace: ckpt removes it.
  assert.deepEqual([...tempDirs()].filter((d) => !dirsBefore.has(d)), [], "CRIU's temporary directory is removed");
});

test('without the user namespace (CKPT_ISOLATE_USERNS=0) such a dump fails with one line saying why and what to do; the job runs on', async (t) => {
  if (!(await needCriu(t))) return;
  if (capSysResource()) {
    t.skip('root has CAP_SYS_RESOURCE here: the dump would succeed');
    return;
  }
  const user = testUser();
  const env = { CKPT_STATE_DIR: join(tempDir(t), 'state'), CKPT_ISOLATE_USERNS: '0' };
  const exe = buildSysv(t);
  const run = ckptProgram(['run', '--isolate', '--name', 'nouserns', '--', 'setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', exe, '300'], env, buildDir(t));
  t.after(() => run.kill());
  await run.waitFor(/^shm 10 /);
  const r = await ckpt(['checkpoint', 'nouserns', '--dir', join(tempDir(t), 'store'), '--term'], env);
  assert.equal(r.code, 1);
  assert.ok(isOneLineError(r.stderr), r.stderr);
  assert.match(r.stderr, new RegExp(`runs as uid ${user.uid}.*CAP_SYS_RESOURCE.*Can't get rlimit`));
  assert.match(r.stderr, /CKPT_ISOLATE_USERNS=0/, 'what to do');
  assert.match(r.stderr, /\[ECKPT_CRIU_FAILED\]$/m);
  // A failed checkpoint never ends the job.
  const seen = counts(run.lines).at(-1)!;
  await run.waitFor(new RegExp(`^shm ${seen + 3} `));
  await run.kill('SIGINT');
});

test("ckpt doctor tells whether root can dump other users' processes, the consequence and the remedy", async (t) => {
  if (!(await needCriu(t))) return;
  const r = await ckpt(['doctor', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const other = (JSON.parse(r.stdout) as { otherUsers: { ok: boolean; isolated: boolean; reason: string; hint?: string } }).otherUsers;
  assert.ok(other, r.stdout);
  assert.equal(other.ok, capSysResource(), other.reason);
  assert.equal(other.isolated, true, 'a user namespace owned by root makes them dumpable');
  const text = await ckpt(['doctor']);
  if (!other.ok) {
    assert.match(other.reason, /CAP_SYS_RESOURCE/);
    assert.match(text.stdout, /other users' processes: only under ckpt run --isolate/);
    assert.match(text.stdout, /→ .*ckpt run --isolate/);
  } else {
    assert.match(text.stdout, /other users' processes: ok/);
  }
  // The probe's child (a throw-away uid) is gone.
  assert.equal(execFileSync('sh', ['-c', 'pgrep -u 2147480001 | wc -l'], { encoding: 'utf8' }).trim(), '0');
});

test("ckpt checkpoint --pid of another user's process without CAP_SYS_RESOURCE: one line saying whose, why and what to do; the process untouched", async (t) => {
  if (!(await needCriu(t))) return;
  if (hasCapSysResourceHere()) return t.skip('this root has CAP_SYS_RESOURCE: such a dump works');
  const user = testUser();
  const { spawn } = await import('node:child_process');
  const victim = spawn('sleep', ['1000'], { uid: user.uid, gid: user.gid, detached: true, stdio: 'ignore' });
  t.after(() => victim.kill('SIGKILL'));
  const store = join(tempDir(t), 'store');
  const r = await ckpt(['checkpoint', '--pid', String(victim.pid), '--dir', store]);
  assert.notEqual(r.code, 0);
  assert.ok(isOneLineError(r.stderr), r.stderr);
  assert.match(r.stderr, new RegExp(`runs as uid ${user.uid}.*CAP_SYS_RESOURCE`));
  assert.match(r.stderr, /ckpt run --isolate/);
  const state = readFileSync(`/proc/${victim.pid}/stat`, 'utf8').split(') ')[1]![0];
  assert.ok(state === 'S' || state === 'R', `the process runs on (state ${state})`);
});

function hasCapSysResourceHere(): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? (BigInt(`0x${m[1]}`) & (1n << 24n)) !== 0n : false;
}

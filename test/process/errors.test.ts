// Bad input and safety: every bad input gets a one-line error with a stable code
// (also in --json), a non-zero exit, and nothing else is touched — no pid ≤ 1 is
// ever signalled, a failed restart leaves its snapshot byte for byte as it was and
// starts no process, a failed checkpoint leaves the process running.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomInt } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  alive,
  ckpt,
  ckptBin,
  fixture,
  isOneLineError,
  needCriu,
  procState,
  Program,
  tempDir,
  userInstall,
  type Result,
} from '../helpers.js';

const isRoot = process.geteuid?.() === 0;

// ---- helpers ----

/** A process that must come through every bad input untouched: in our own process group. */
function sentinel(t: TestContext): Program {
  const p = new Program('sleep', ['1000']);
  t.after(() => p.kill());
  return p;
}

function assertUntouched(p: Program, what = 'sentinel'): void {
  assert.ok(alive(p.pid), `${what} ${p.pid} is alive`);
  const state = procState(p.pid);
  // Neither stopped (T, t) nor dead (Z, X); a loaded machine may show it in D for a moment.
  assert.ok(state !== undefined && !['T', 't', 'Z', 'X'].includes(state), `${what} ${p.pid} is not stopped (state ${state})`);
}

/** The failure as text (one line on stderr, code in the suffix) and as --json. */
function assertFailure(r: Result, code: string, json: boolean): void {
  assert.notEqual(r.code, 0, `non-zero exit; stdout ${r.stdout} stderr ${r.stderr}`);
  assert.equal(r.signal, null, 'ckpt ended by itself');
  if (json) {
    assert.ok(isOneLineError(r.stderr), `the error on stderr too, one line: ${JSON.stringify(r.stderr)}`);
    const out = JSON.parse(r.stdout) as { ok: boolean; error: { code: string; message: string } };
    assert.equal(out.ok, false);
    assert.equal(out.error.code, code, r.stdout);
    assert.equal(typeof out.error.message, 'string');
  } else {
    assert.ok(isOneLineError(r.stderr), `one-line error: ${JSON.stringify(r.stderr)}`);
    assert.ok(r.stderr.trim().endsWith(`[${code}]`), `code ${code} in: ${r.stderr}`);
    assert.equal(r.stdout, '');
  }
}

/** Runs ckpt ARGS twice, as text and with --json; both must fail with `code`. Returns the text run. */
async function expectError(args: string[], code: string, env: NodeJS.ProcessEnv = {}): Promise<Result> {
  const text = await ckpt(args, env, 30_000);
  assertFailure(text, code, false);
  // --json among ckpt's options: after a `--` it would be an argument.
  const end = args.includes('--') ? args.indexOf('--') : args.length;
  assertFailure(await ckpt([...args.slice(0, end), '--json', ...args.slice(end)], env, 30_000), code, true);
  return text;
}

/** Every entry below `dir`: type, mode and (for files) a checksum. */
function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      if (st.isDirectory()) {
        out[r] = `dir ${(st.mode & 0o7777).toString(8)}`;
        walk(p, r);
      } else {
        const sum = st.isFile() ? createHash('sha256').update(readFileSync(p)).digest('hex') : 'special';
        out[r] = `file ${(st.mode & 0o7777).toString(8)} ${st.size} ${sum}`;
      }
    }
  };
  walk(dir, '');
  return out;
}

/** Live processes whose command line holds `marker`. */
function processesWith(marker: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes(marker) && alive(Number(entry))) out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

interface CriuSnapshot {
  base: string;
  store: string;
  seqDir: string;
  pid: number;
  /** ticker.sh's argument: unique, so that any restored copy can be found. */
  marker: string;
}

/** A real CRIU snapshot of ticker.sh, taken with --kill (the process is gone). */
async function criuSnapshot(t: TestContext): Promise<CriuSnapshot> {
  const base = tempDir(t);
  const store = join(base, 'store');
  const marker = String(randomInt(10_000_000, 99_999_999));
  const program = new Program(fixture('process/ticker.sh'), [marker], {}, { session: true });
  t.after(async () => {
    await program.kill();
    for (const pid of processesWith(marker)) process.kill(pid, 'SIGKILL');
  });
  await program.waitFor(/^tick 3$/);
  const r = await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store, '--kill']);
  assert.equal(r.code, 0, r.stderr);
  await program.exited;
  return { base, store, seqDir: join(store, '000001'), pid: program.pid, marker };
}

/** A failed restart: the snapshot is byte-identical afterwards and no process was started. */
async function expectRestartRefused(snap: CriuSnapshot, args: string[], code: string, env: NodeJS.ProcessEnv = {}): Promise<Result> {
  const before = fingerprint(snap.base);
  // A restore that wrongly succeeds would keep `ckpt restart` waiting on it: end any such process.
  const started = new Set<number>();
  const watchdog = setInterval(() => {
    for (const pid of processesWith(snap.marker)) {
      started.add(pid);
      process.kill(pid, 'SIGKILL');
    }
  }, 200);
  let r: Result;
  try {
    r = await expectError(['restart', ...args], code, env);
  } finally {
    clearInterval(watchdog);
  }
  // A damaged snapshot is restored while it is verified: its tree may exist for a while,
  // held by CRIU before its first instruction, then killed. It never runs (no tick).
  if (code !== 'ECKPT_SNAPSHOT_CORRUPT') assert.deepEqual([...started], [], 'no process was started');
  assert.doesNotMatch(r.stdout, /^tick /m, 'nothing restored ran');
  assert.deepEqual(fingerprint(snap.base), before, 'the snapshot is untouched');
  assert.deepEqual(processesWith(snap.marker), [], 'no process was started');
  assert.ok(!alive(snap.pid), 'nothing holds the original pid');
  return r;
}

function editManifest(seqDir: string, edit: (m: Record<string, any>) => void): void {
  const path = join(seqDir, 'manifest.json');
  const m = JSON.parse(readFileSync(path, 'utf8'));
  edit(m);
  writeFileSync(path, JSON.stringify(m, null, 2));
}

/** A stand-in criu that reports an old version. */
function oldCriu(dir: string): string {
  const path = join(dir, 'criu-3.17');
  writeFileSync(path, '#!/bin/sh\ncase "$1" in\n  --version) echo "Version: 3.17" ;;\n  check) echo "Looks good." ;;\n  *) exit 2 ;;\nesac\n');
  chmodSync(path, 0o755);
  return path;
}

// ---- CRIU missing or unsupported ----

test('missing or too old CRIU: checkpoint --pid fails before touching the process or the store', async (t) => {
  const base = tempDir(t);
  const victim = sentinel(t);
  const store = join(base, 'store');
  const args = ['checkpoint', '--pid', String(victim.pid), '--dir', store, '--kill'];
  const r = await expectError(args, 'ECKPT_CRIU_NOT_FOUND', { CKPT_CRIU: '/nonexistent' });
  assert.match(r.stderr, /\/nonexistent/);
  const old = await expectError(args, 'ECKPT_CRIU_TOO_OLD', { CKPT_CRIU: oldCriu(base) });
  assert.match(old.stderr, /3\.17/);
  assert.ok(!existsSync(store), 'no store was created');
  assertUntouched(victim, 'the process');
});

test('missing or too old CRIU: restart of a criu snapshot is refused, the snapshot untouched', async (t) => {
  if (!(await needCriu(t))) return;
  const snap = await criuSnapshot(t);
  await expectRestartRefused(snap, [snap.store], 'ECKPT_CRIU_NOT_FOUND', { CKPT_CRIU: '/nonexistent' });
  const r = await expectRestartRefused(snap, [snap.store], 'ECKPT_CRIU_TOO_OLD', { CKPT_CRIU: oldCriu(snap.base) });
  assert.match(r.stderr, /too old/);
});

// ---- pids ----

test('no such pid', async (t) => {
  const base = tempDir(t);
  const store = join(base, 'store');
  // pids are always below pid_max; and a child that has exited and been reaped.
  const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  const gone = spawnSync('true').pid!;
  for (const pid of [pidMax, gone]) {
    if (existsSync(`/proc/${pid}`)) continue; // reused meanwhile: not a missing pid
    const r = await expectError(['checkpoint', '--pid', String(pid), '--dir', store, '--kill'], 'ECKPT_NO_SUCH_PROCESS');
    assert.match(r.stderr, new RegExp(`\\b${pid}\\b`));
  }
  await expectError(['resume', String(pidMax)], 'ECKPT_NO_SUCH_PROCESS');
  assert.ok(!existsSync(store));
});

test('pids 0, 1, -1 and non-numbers are refused and never signalled', async (t) => {
  const base = tempDir(t);
  const store = join(base, 'store');
  // kill(0) would hit our own process group (this test and the sentinel), kill(-1) everything.
  const watch = sentinel(t);
  for (const mode of ['--leave-running', '--stop', '--kill']) {
    for (const pid of ['0', '1']) {
      const r = await expectError(['checkpoint', '--pid', pid, '--dir', store, mode], 'ECKPT_UNSAFE_PID');
      assert.match(r.stderr, new RegExp(`pid ${pid}\\b`));
    }
    for (const args of [['--pid', '-1'], ['--pid=-1'], ['--pid', 'abc'], ['--pid', '1e3'], ['--pid', ''], ['--pid', '12abc']]) {
      await expectError(['checkpoint', ...args, '--dir', store, mode], 'ECKPT_USAGE');
    }
  }
  await expectError(['resume', '0'], 'ECKPT_UNSAFE_PID');
  await expectError(['resume', '1'], 'ECKPT_UNSAFE_PID');
  await expectError(['resume', 'abc'], 'ECKPT_USAGE');
  await expectError(['resume', '--', '-1'], 'ECKPT_USAGE');
  assertUntouched(watch);
  assert.equal(procState(process.pid), 'R', 'this test process is alive and running');
  assert.ok(!existsSync(store), 'no store was created');
});

test("ckpt's own pid and its parent are refused", async (t) => {
  const base = tempDir(t);
  const store = join(base, 'store');
  // The parent: this test process.
  const r = await expectError(['checkpoint', '--pid', String(process.pid), '--dir', store, '--kill'], 'ECKPT_USAGE');
  assert.match(r.stderr, /ckpt itself or one of its parents/);
  // Itself: the shell's pid becomes ckpt's through exec.
  for (const json of [false, true]) {
    const self = spawnSync(
      'sh',
      ['-c', `exec "$0" "$1" checkpoint --pid $$ --dir "$2" --kill ${json ? '--json' : ''}`, process.execPath, ckptBin, store],
      { encoding: 'utf8', timeout: 30_000 },
    );
    assertFailure({ code: self.status, signal: self.signal, stdout: self.stdout, stderr: self.stderr }, 'ECKPT_USAGE', json);
  }
  assert.ok(!existsSync(store));
});

// ---- another user ----

const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];

/** Runs ckpt as user nobody (setpriv keeps the environment), from a copy any user can read (the checkout may be in a 0700 directory). */
async function ckptAsNobody(args: string[]): Promise<Result> {
  const child = spawn('setpriv', [...NOBODY, process.execPath, userInstall(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  return { code, signal, stdout, stderr };
}

async function nobodyCanRunCkpt(t: TestContext): Promise<boolean> {
  if (!isRoot) {
    t.skip('needs root to switch to nobody');
    return false;
  }
  const probe = await ckptAsNobody(['--version']);
  if (probe.code !== 0) {
    t.skip(`a copy of ckpt is not runnable by nobody: ${probe.stderr.trim()}`);
    return false;
  }
  return true;
}

test("another user's process: ECKPT_NOT_OWNER, the process untouched", async (t) => {
  if (!(await nobodyCanRunCkpt(t))) return;
  const base = tempDir(t);
  chmodSync(base, 0o755);
  const store = join(base, 'nobody-store');
  mkdirSync(store, { mode: 0o700 });
  chownSync(store, 65534, 65534);
  const victim = sentinel(t); // root's
  for (const json of [false, true]) {
    for (const mode of ['--leave-running', '--stop', '--kill']) {
      const r = await ckptAsNobody(['checkpoint', '--pid', String(victim.pid), '--dir', store, mode, ...(json ? ['--json'] : [])]);
      assertFailure(r, 'ECKPT_NOT_OWNER', json);
    }
  }
  assertUntouched(victim, 'the process');
  assert.deepEqual(readdirSync(store), [], 'nothing written to the store');
});

test("another user's snapshot: ECKPT_PERMISSION, the snapshot untouched", async (t) => {
  if (!(await needCriu(t))) return;
  if (!(await nobodyCanRunCkpt(t))) return;
  const snap = await criuSnapshot(t);
  chmodSync(snap.base, 0o755); // nobody may reach the store, not read it (it is 0700)
  const before = fingerprint(snap.base);
  for (const json of [false, true]) {
    for (const args of [['restart', snap.store], ['restart', snap.seqDir], ['snapshots', 'ls', snap.store], ['snapshots', 'verify', snap.store]]) {
      const r = await ckptAsNobody([...args, ...(json ? ['--json'] : [])]);
      assertFailure(r, 'ECKPT_PERMISSION', json);
    }
  }
  assert.deepEqual(fingerprint(snap.base), before);
  assert.deepEqual(processesWith(snap.marker), []);
});

// ---- snapshots that cannot be restored ----

test('a snapshot directory that is missing', async (t) => {
  const base = tempDir(t);
  const missing = join(base, 'no-such-store');
  for (const args of [['restart', missing], ['restart', missing, '--seq', '1'], ['snapshots', 'inspect', missing], ['snapshots', 'verify', missing], ['snapshots', 'ls', missing], ['snapshots', 'rm', missing]]) {
    const r = await expectError(args, 'ECKPT_SNAPSHOT_MISSING');
    assert.match(r.stderr, /no-such-store/);
  }
  assert.ok(!existsSync(missing), 'nothing created');
  assert.deepEqual(readdirSync(base), []);
});

test('an incomplete snapshot: only a .partial directory, or no manifest', async (t) => {
  if (!(await needCriu(t))) return;
  const snap = await criuSnapshot(t);
  // Never committed: the seq directory is still under its temporary name.
  const partial = join(snap.store, '.partial-000001-0badc0de');
  renameSync(snap.seqDir, partial);
  const r = await expectRestartRefused(snap, [snap.store], 'ECKPT_SNAPSHOT_INCOMPLETE');
  assert.match(r.stderr, /incomplete/);
  await expectRestartRefused(snap, [snap.store, '--seq', '1'], 'ECKPT_SNAPSHOT_MISSING');
  await expectRestartRefused(snap, [partial], 'ECKPT_SNAPSHOT_INCOMPLETE');
  const ls = await ckpt(['snapshots', 'ls', snap.store, '--json']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.deepEqual(JSON.parse(ls.stdout).snapshots, [], 'a partial snapshot is never listed');
  // A seq directory without its manifest.
  renameSync(partial, snap.seqDir);
  rmSync(join(snap.seqDir, 'manifest.json'));
  await expectRestartRefused(snap, [snap.store], 'ECKPT_SNAPSHOT_INCOMPLETE');
  await expectRestartRefused(snap, [snap.store, '--seq', '1'], 'ECKPT_SNAPSHOT_INCOMPLETE');
  await expectRestartRefused(snap, [snap.seqDir], 'ECKPT_SNAPSHOT_INCOMPLETE');
});

test('a snapshot of an unknown format version', async (t) => {
  if (!(await needCriu(t))) return;
  const snap = await criuSnapshot(t);
  editManifest(snap.seqDir, (m) => (m.version = 2));
  const r = await expectRestartRefused(snap, [snap.store], 'ECKPT_SNAPSHOT_FORMAT');
  assert.match(r.stderr, /version 2/);
  await expectRestartRefused(snap, [snap.seqDir, '--no-verify'], 'ECKPT_SNAPSHOT_FORMAT');
  editManifest(snap.seqDir, (m) => (m.version = '1'));
  await expectRestartRefused(snap, [snap.store], 'ECKPT_SNAPSHOT_FORMAT');
  writeFileSync(join(snap.seqDir, 'manifest.json'), '{ not json');
  await expectRestartRefused(snap, [snap.store], 'ECKPT_SNAPSHOT_FORMAT');
});

test('a file whose checksum does not match: restart refused, verify names the file', async (t) => {
  if (!(await needCriu(t))) return;
  const snap = await criuSnapshot(t);
  const images = join(snap.seqDir, 'images');
  const biggest = readdirSync(images)
    .filter((f) => f.endsWith('.img'))
    .sort((a, b) => statSync(join(images, b)).size - statSync(join(images, a)).size)[0]!;
  const path = join(images, biggest);
  const bytes = readFileSync(path);
  const at = Math.floor(bytes.length / 2);
  bytes[at] = bytes[at]! ^ 0xff;
  writeFileSync(path, bytes);
  const r = await expectRestartRefused(snap, [snap.store], 'ECKPT_SNAPSHOT_CORRUPT');
  assert.ok(r.stderr.includes(`images/${biggest}`), `the error names the file: ${r.stderr}`);

  const verify = await ckpt(['snapshots', 'verify', snap.store]);
  assertFailure({ ...verify, stdout: '' }, 'ECKPT_SNAPSHOT_CORRUPT', false);
  assert.ok(verify.stderr.includes(`images/${biggest}: checksum mismatch`), verify.stderr);
  assert.ok(verify.stdout.includes(`images/${biggest}: checksum mismatch`), verify.stdout);
  const vj = await ckpt(['snapshots', 'verify', snap.store, '--json']);
  assert.notEqual(vj.code, 0);
  const out = JSON.parse(vj.stdout);
  assert.equal(out.ok, false);
  assert.equal(out.error.code, 'ECKPT_SNAPSHOT_CORRUPT');
  assert.deepEqual(out.error.details.problems, [`images/${biggest}: checksum mismatch`]);

  // Truncated and missing files are named too.
  writeFileSync(join(images, 'pstree.img'), '');
  rmSync(join(images, 'inventory.img'));
  const two = await ckpt(['snapshots', 'verify', snap.seqDir, '--json']);
  assert.notEqual(two.code, 0);
  const problems: string[] = JSON.parse(two.stdout).error.details.problems;
  assert.ok(problems.some((p) => p.startsWith('images/pstree.img: size 0')), problems.join('; '));
  assert.ok(problems.includes('images/inventory.img: missing'), problems.join('; '));
  await expectRestartRefused(snap, [snap.store], 'ECKPT_SNAPSHOT_CORRUPT');
});

/** Flips every bit of one byte of a file, in place. */
function flipByte(path: string, at: number): void {
  const bytes = readFileSync(path);
  bytes[at] = bytes[at]! ^ 0xff;
  writeFileSync(path, bytes);
}

test('a flipped byte in a pages image: restored while verified, killed before it ran (ECKPT_SNAPSHOT_CORRUPT); intact, it continues', async (t) => {
  if (!(await needCriu(t))) return;
  const snap = await criuSnapshot(t);
  const tree: number[] = JSON.parse(readFileSync(join(snap.seqDir, 'manifest.json'), 'utf8')).process.tree;
  const images = join(snap.seqDir, 'images');
  const pages = readdirSync(images)
    .filter((f) => /^pages-\d+\.img$/.test(f))
    .sort((a, b) => statSync(join(images, b)).size - statSync(join(images, a)).size)[0]!;
  const path = join(images, pages);
  const at = Math.floor(statSync(path).size / 2);
  flipByte(path, at);
  // CRIU restores the tree while the checksums are computed and holds it at post-restore: damaged, it is killed there.
  const r = await ckpt(['restart', snap.store]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(`images/${pages}: checksum mismatch.*\\[ECKPT_SNAPSHOT_CORRUPT\\]$`, 'm'));
  assert.ok(isOneLineError(r.stderr), r.stderr);
  assert.doesNotMatch(r.stdout, /^tick /m, 'the restored tree never ran');
  // The pids CRIU restored (the snapshot's own): none is left.
  for (const pid of tree) assert.ok(!alive(pid), `pid ${pid} of the restored tree is gone`);
  assert.deepEqual(processesWith(snap.marker), []);

  // The same snapshot, intact again: restored, released, and it goes on ticking.
  flipByte(path, at);
  const again = new Program(process.execPath, [ckptBin, 'restart', snap.store], {});
  t.after(() => again.kill());
  await again.waitFor(/^tick \d+$/);
  assert.ok(tree.some((pid) => alive(pid)), 'the restored tree runs');
});

test('--no-verify of a truncated pages image, on which CRIU never answers: ended at CKPT_RESTORE_TIMEOUT_MS with CRIU and the half-restored tree (ECKPT_TIMEOUT)', async (t) => {
  if (!(await needCriu(t))) return;
  const snap = await criuSnapshot(t);
  const tree: number[] = JSON.parse(readFileSync(join(snap.seqDir, 'manifest.json'), 'utf8')).process.tree;
  const images = join(snap.seqDir, 'images');
  for (const f of readdirSync(images).filter((f) => /^pages-\d+\.img$/.test(f))) truncateSync(join(images, f), Math.floor(statSync(join(images, f)).size / 2));
  // CRIU 4.2's restorer spins in the half-restored task reading the missing pages: without a deadline ckpt waited for ever.
  const r = await ckpt(['restart', snap.store, '--no-verify', '--detach'], { CKPT_RESTORE_TIMEOUT_MS: '3000' });
  assert.equal(r.code, 1, r.stderr);
  assert.ok(isOneLineError(r.stderr), r.stderr);
  assert.match(r.stderr, /CRIU restore did not finish within 3000 ms; it and what it restored were killed .*\[ECKPT_TIMEOUT\]$/m);
  for (const pid of tree) assert.ok(!alive(pid), `pid ${pid} of the restored tree is gone`);
  assert.deepEqual(processesWith(snap.marker), []);
});

test('a manifest naming a path outside the snapshot: ECKPT_SNAPSHOT_PATH, nothing read outside', async (t) => {
  if (!(await needCriu(t))) return;
  const snap = await criuSnapshot(t);
  // A FIFO outside the snapshot: opening it for reading would block ckpt (and time the test out).
  const fifo = join(snap.base, 'outside.fifo');
  execFileSync('mkfifo', ['-m', '600', fifo]);
  const original = readFileSync(join(snap.seqDir, 'manifest.json'), 'utf8');
  for (const bad of ['../../etc/passwd', '/etc/passwd', '../../outside.fifo', fifo, 'images/../../../outside.fifo', './images/core.img', '']) {
    writeFileSync(join(snap.seqDir, 'manifest.json'), original);
    editManifest(snap.seqDir, (m) => {
      m.files[0].path = bad;
    });
    const code = 'ECKPT_SNAPSHOT_PATH';
    await expectRestartRefused(snap, [snap.store], code);
    await expectRestartRefused(snap, [snap.store, '--no-verify'], code);
    for (const action of ['verify', 'inspect']) await expectError(['snapshots', action, snap.store], code);
  }
  assert.ok(lstatSync(fifo).isFIFO());
});

test('a restore onto a pid that is taken: ECKPT_PID_TAKEN, the original unharmed', async (t) => {
  if (!(await needCriu(t))) return;
  const base = tempDir(t);
  const store = join(base, 'store');
  const program = new Program(fixture('process/ticker.sh'), ['100000'], {}, { session: true });
  t.after(() => program.kill());
  await program.waitFor(/^tick 3$/);
  const r = await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store, '--leave-running']);
  assert.equal(r.code, 0, r.stderr);
  const before = fingerprint(store);
  const refused = await expectError(['restart', store], 'ECKPT_PID_TAKEN');
  assert.match(refused.stderr, new RegExp(`pid ${program.pid}\\b`));
  assert.deepEqual(fingerprint(store), before);
  // Still ours, still running, still ticking.
  assertUntouched(program, 'the original');
  const last = Number(/\d+/.exec(program.lines.at(-1)!)![0]);
  await program.waitFor(new RegExp(`^tick ${last + 3}$`));
  assert.equal(program.child.exitCode, null);
});

// ---- the command line ----

test('unknown command, unknown option, unknown or unsuitable checkpointer', async (t) => {
  const base = tempDir(t);
  const store = join(base, 'store');
  const victim = sentinel(t);
  const pid = String(victim.pid);
  const r = await expectError(['frobnicate'], 'ECKPT_USAGE');
  assert.match(r.stderr, /unknown command 'frobnicate'/);
  const opt = await expectError(['checkpoint', '--pid', pid, '--dir', store, '--frobnicate'], 'ECKPT_USAGE');
  assert.match(opt.stderr, /--frobnicate/);
  await expectError(['restart', store, '--frobnicate'], 'ECKPT_USAGE');
  await expectError(['snapshots', 'frobnicate', store], 'ECKPT_USAGE');
  await expectError(['checkpoint', '--dir', store], 'ECKPT_USAGE');
  await expectError(['checkpoint', '--pid', pid], 'ECKPT_USAGE');
  await expectError(['checkpoint', '--pid', pid, '--dir', store, '--stop', '--kill'], 'ECKPT_USAGE');
  const bogus = await expectError(['checkpoint', '--pid', pid, '--dir', store, '--kill', '--crs', 'bogus'], 'ECKPT_CRS_UNKNOWN');
  assert.match(bogus.stderr, /bogus/);
  await expectError(['checkpoint', '--pid', pid, '--dir', store, '--kill'], 'ECKPT_CRS_UNKNOWN', { CKPT_CRS: 'bogus' });
  for (const crs of ['self', 'none']) {
    const self = await expectError(['checkpoint', '--pid', pid, '--dir', store, '--kill', '--crs', crs], 'ECKPT_CRS_UNAVAILABLE');
    assert.match(self.stderr, new RegExp(`'${crs}' checkpointer cannot snapshot another process`));
  }
  assertUntouched(victim, 'the process');
  assert.ok(!existsSync(store), 'no store was created');
});

// ---- a full disk ----

test('a full file system: ECKPT_NO_SPACE, the --kill victim still runs, no snapshot listed', async (t) => {
  if (!(await needCriu(t))) return;
  if (!isRoot) return t.skip('mounting a tmpfs needs root');
  // Not under tempDir(): the tmpfs must be unmounted before its mount point is removed.
  const mnt = mkdtempSync(join(tmpdir(), 'ckpt-tiny-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', mnt]);
  } catch (err) {
    rmSync(mnt, { recursive: true, force: true });
    return t.skip(`cannot mount a tmpfs: ${(err as Error).message}`);
  }
  // Node alone maps far more than 1 MB; 8 MB more of touched memory to be sure.
  const program = new Program(process.execPath, ['-e', "const b = Buffer.alloc(8 << 20, 1); console.log('ready'); setInterval(() => b[0]++, 100);"], {
    UV_USE_IO_URING: '0',
  }, { session: true });
  t.after(async () => {
    await program.kill();
    execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  const store = join(mnt, 'store');
  await program.waitFor(/^ready$/);
  const r = await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store, '--kill']);
  assertFailure(r, 'ECKPT_NO_SPACE', false);
  assert.match(r.stderr, /CRIU's log: \/\S+\.log/);
  const log = /CRIU's log: (\/\S+\.log)/.exec(r.stderr)![1]!;
  assert.ok(!log.startsWith(mnt) && existsSync(log), `the log ${log} outlives the aborted snapshot`);
  rmSync(log, { force: true });
  assertUntouched(program, 'the process');
  assert.equal(program.child.exitCode, null);
  assert.deepEqual(readdirSync(mnt), [], 'no partial snapshot (nor the store it created) is left');
  const j = await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store, '--kill', '--json']);
  assertFailure(j, 'ECKPT_NO_SPACE', true);
  assertUntouched(program, 'the process');
  mkdirSync(store);
  const again = await ckpt(['checkpoint', '--pid', String(program.pid), '--dir', store, '--stop']);
  assertFailure(again, 'ECKPT_NO_SPACE', false);
  assertUntouched(program, 'the process');
  const ls = await ckpt(['snapshots', 'ls', store, '--json']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.deepEqual(JSON.parse(ls.stdout).snapshots, []);
  assert.deepEqual(readdirSync(store), [], 'no partial snapshot is left');
});

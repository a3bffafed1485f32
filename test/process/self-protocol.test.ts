// The language-neutral self protocol (docs/SELF-PROTOCOL.md): a Python program run
// under `ckpt-self` asks for a checkpoint, writes its own state file when told to, is
// killed, and `ckpt restart` brings it back with CKPT_SELF_RESTORE: exact output.
// Then the failure paths: a program that cannot save, and a checkpoint triggered
// from outside (SIGUSR2 to the supervisor) that the program answers at its next poll.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ckpt, ckptProgram, Program, root, tempDir } from '../helpers.js';

const selfBin = join(root, 'scripts', 'ckpt-self.mjs');
const example = join(root, 'examples', 'counter.py');

function python(t: import('node:test').TestContext): boolean {
  try {
    execFileSync('python3', ['-c', 'pass']);
    return true;
  } catch {
    if (process.env.CI) throw new Error('python3 is needed for this test');
    t.skip('no python3');
    return false;
  }
}

test('a Python program checkpoints itself through the protocol, is killed, and restarts from its state', async (t) => {
  if (!python(t)) return;
  const store = join(tempDir(t), 'store');
  const original = new Program(process.execPath, [selfBin, '--dir', store, '--', 'python3', example], {}, { session: true });
  t.after(() => original.kill());
  await original.waitFor(/^waiting to be killed/);
  assert.deepEqual(original.lines, ['count 1', 'count 2', 'count 3', 'count 4', 'count 5', 'checkpoint 1 at counter 5', 'waiting to be killed…']);
  // The state file the program wrote is in the snapshot, private, checksummed.
  const snap = join(store, '000001');
  assert.equal(readFileSync(join(snap, 'state.bin'), 'utf8'), '{"counter": 5}');
  assert.equal(statSync(join(snap, 'state.bin')).mode & 0o777, 0o600);
  const manifest = JSON.parse(readFileSync(join(snap, 'manifest.json'), 'utf8'));
  assert.equal(manifest.crs.name, 'self');
  assert.deepEqual(manifest.files.map((f: { path: string }) => f.path), ['state.bin']);
  assert.equal(manifest.process.pid, original.pid, 'the supervisor is the process recorded');
  await original.kill('SIGKILL');

  const restarted = ckptProgram(['restart', store]);
  t.after(() => restarted.kill());
  const exit = await restarted.exited;
  assert.equal(exit.code, 0, restarted.stderr);
  assert.deepEqual(restarted.lines, ['restarted at counter 5', 'count 6', 'count 7', 'count 8', 'count 9', 'count 10', 'done']);
  assert.equal(restarted.stderr, '');
});

/** A Python program speaking the protocol through examples/ckpt_self.py. */
function script(dir: string, body: string): string {
  const file = join(dir, 'prog.py');
  writeFileSync(file, `import sys, os\nsys.path.insert(0, ${JSON.stringify(join(root, 'examples'))})\nimport ckpt_self\n${body}\n`);
  return file;
}

test('a program that cannot save gets `failed`, goes on, and leaves no snapshot', async (t) => {
  if (!python(t)) return;
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const prog = script(
    dir,
    `def save(path):
    raise OSError("disk says no")
try:
    ckpt_self.checkpoint(save)
except ckpt_self.CheckpointFailed as e:
    print("failed:", e, flush=True)
seq = ckpt_self.checkpoint(lambda path: ckpt_self.write_private(path, b"ok"))
print("then", seq, flush=True)`,
  );
  const p = new Program(process.execPath, [selfBin, '--dir', store, '--', 'python3', prog], {}, { session: true });
  t.after(() => p.kill());
  const exit = await p.exited;
  assert.equal(exit.code, 0, p.stderr);
  assert.deepEqual(p.lines, ['failed: ECKPT_CHECKPOINT_FAILED the program could not save its state: disk says no', 'then 1']);
  // The aborted checkpoint left nothing: one snapshot, no partial directory.
  assert.deepEqual(readdirSync(store).filter((n) => !/^\d{6}$/.test(n)), []);
  assert.equal(readdirSync(store).length, 1);
  assert.equal(readFileSync(join(store, readdirSync(store)[0]!, 'state.bin'), 'utf8'), 'ok');
});

test('a program that never answers `save`, or never says `restored`: ECKPT_TIMEOUT at CKPT_CHECKPOINT_PHASE_MS, nothing kept, nothing left running', async (t) => {
  if (!python(t)) return;
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const mark = `never-${process.pid}-${Date.now()}`;
  // Raw protocol on fd 3: the first run saves once, then asks again and never answers; restarted, it never says `restored`.
  const prog = join(dir, 'prog.py');
  writeFileSync(
    prog,
    `import os, sys, time
f = os.fdopen(3, "r+b", buffering=0)
def line():
    b = b""
    while not b.endswith(b"\\n"):
        b += f.read(1)
    return b.decode().strip()
if os.environ.get("CKPT_SELF_RESTORE"):
    time.sleep(3600)
f.write(b"checkpoint\\n")
path = line().split(" ", 1)[1]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, b"state"); os.close(fd)
f.write(b"saved\\n")
print(line(), flush=True)
f.write(b"checkpoint\\n")
print(line().split(" ")[0], flush=True)
print(line(), flush=True)
`,
  );
  // Long enough that the first save's prompt answer is never late on a loaded machine; the never-answered ones end at it.
  const env = { CKPT_CHECKPOINT_PHASE_MS: '5000', MARK: mark };
  const p = new Program(process.execPath, [selfBin, '--dir', store, '--', 'python3', prog, mark], env, { session: true });
  t.after(() => p.kill());
  const exit = await p.exited;
  assert.equal(exit.code, 0, p.stderr);
  assert.equal(p.lines[0], 'continue 1');
  assert.equal(p.lines[1], 'save');
  assert.match(p.lines[2]!, /^failed ECKPT_TIMEOUT the program did not answer `save` within 5000 ms$/);
  assert.deepEqual(readdirSync(store), ['000001'], 'the timed-out checkpoint left nothing');

  const r = await ckpt(['restart', store], env, 60_000);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /^ckpt: the program did not answer its restore \(`restored`\) within 5000 ms .*\[ECKPT_TIMEOUT\]\n$/);
  const left = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(mark) && !l.includes('ps -eo'));
  assert.deepEqual(left, [], 'the program is not left running');
});

test('a checkpoint triggered from outside (SIGUSR2) is answered at the program\'s next poll', async (t) => {
  if (!python(t)) return;
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const prog = script(
    dir,
    `state = ckpt_self.restore(default=b"fresh", load=lambda p: open(p, "rb").read())
print("state", state.decode(), flush=True)
if state == b"fresh":
    print("ready", flush=True)
    import select
    select.select([int(os.environ["CKPT_SELF_FD"])], [], [])  # a program would poll at its safe points
    assert ckpt_self.pending()
    seq = ckpt_self.serve(lambda p: ckpt_self.write_private(p, b"saved-by-trigger"))
    print("served", seq, flush=True)`,
  );
  const p = new Program(process.execPath, [selfBin, '--dir', store, '--', 'python3', prog], {}, { session: true });
  t.after(() => p.kill());
  await p.waitFor(/^ready$/);
  assert.ok(p.pid > 1);
  process.kill(p.pid, 'SIGUSR2');
  assert.equal((await p.exited).code, 0, p.stderr);
  assert.deepEqual(p.lines, ['state fresh', 'ready', 'served 1']);
  const r = await ckpt(['restart', store]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'state saved-by-trigger\n');
  assert.equal(existsSync(join(store, '000002')), false, 'a restart takes no snapshot');
});

test('ckpt-self refuses bad usage with one coded line', async () => {
  for (const args of [[], ['--', 'true'], ['--dir', '/tmp/x'], ['--bogus']]) {
    let err: (Error & { status?: number; stderr?: string }) | undefined;
    try {
      execFileSync(process.execPath, [selfBin, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      err = e as typeof err;
    }
    assert.ok(err, `accepted ${args.join(' ')}`);
    assert.equal(err!.status, 2);
    assert.match(err!.stderr!, /^ckpt: .* \[ECKPT_USAGE\]\n$/);
  }
  const missing = (() => {
    try {
      execFileSync(process.execPath, [selfBin, '--dir', '/tmp/ckpt-self-none', '--', '/nonexistent/prog'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      return (e as { stderr: string }).stderr;
    }
    return '';
  })();
  assert.match(missing, /^ckpt: cannot start \/nonexistent\/prog: .* \[ECKPT_COMMAND_NOT_FOUND\]\n$/);
});

test('a job of Python ranks under `ckpt run --crs self`: coordinated checkpoint at a safe point, terminate, restart', async (t) => {
  if (!python(t)) return;
  const { EXIT_CHECKPOINTED } = await import('../../dist/runtime/launcher.js');
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const env = { CKPT_STATE_DIR: join(dir, 'state') };
  const name = `pyjob-${process.pid}`;
  const rankPy = join(root, 'examples', 'rank.py');
  const run = ckptProgram(['run', '-n', '2', '--crs', 'self', '--name', name, '--dir', store, '--', process.execPath, selfBin, '--', 'python3', rankPy], env);
  t.after(() => run.kill('SIGTERM'));
  for (const r of [0, 1]) await run.waitFor(new RegExp(`^\\[${r}\\] ready ${r}$`));
  // A checkpoint the job goes on from: every rank stops at the same safe point, saves, continues.
  const first = await ckpt(['checkpoint', name, '--json'], env);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(JSON.parse(first.stdout).seq, 1);
  const at: number[] = [];
  for (const r of [0, 1]) at.push(Number((await run.waitFor(new RegExp(`^\\[${r}\\] rank ${r} checkpoint 1 at \\d+$`))).split(' at ')[1]));
  assert.equal(at[0], at[1], 'one global safe point');
  // Then one that ends the job.
  const term = await ckpt(['checkpoint', name, '--term', '--json'], env);
  assert.equal(term.code, 0, term.stderr);
  assert.equal(JSON.parse(term.stdout).seq, 2);
  assert.equal((await run.exited).code, EXIT_CHECKPOINTED, run.stderr);
  const verify = await ckpt(['snapshots', 'verify', store], env);
  assert.equal(verify.code, 0, verify.stderr);

  const again = ckptProgram(['restart', store], env);
  t.after(() => again.kill('SIGTERM'));
  const exit = await again.exited;
  assert.equal(exit.code, 0, again.stderr);
  // Both ranks restart from the second snapshot's one safe point, past the first's.
  const k = Number(again.lines.find((l) => l.startsWith('[0] rank 0 restored at '))?.split(' at ')[1]);
  assert.ok(k > at[0]!, `restored at ${k}, after ${at[0]}: ${again.lines.join(' | ')}`);
  for (const r of [0, 1]) {
    const mine = again.lines.filter((l) => l.startsWith(`[${r}] `));
    assert.deepEqual(mine, [`[${r}] rank ${r} restored at ${k}`, `[${r}] rank ${r} done at ${k + 5}`]);
  }
});

// Ctrl-C (SIGINT) or SIGTERM to `ckpt checkpoint --pid` while a 500 MB process is
// being dumped: the checkpoint is aborted — the process runs on as before (not
// frozen, not stopped, not killed even with --kill), nothing is left in the store,
// one line is said and the status is 128 + the signal. The signal comes at a fault
// gate where CRIU has written every image and holds the tree frozen, or while the
// images are being written (the partial snapshot holds > 64 MB).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { alive, ckptBin, eventually, faultEnv, gate, needCriu, procState, Program, tempDir } from '../helpers.js';

/** 500 MB of touched memory, then a tick every 20 ms. */
const BIG = `
import time
b = bytearray(b'\\x01') * (500 << 20)
print('ready', flush=True)
n = 0
while True:
    n += 1
    print('tick', n, flush=True)
    time.sleep(0.02)
`;

/** Bytes below `dir` (files only; a directory that vanished counts 0). */
function bytesIn(dir: string): number {
  let n = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    try {
      const st = lstatSync(join(dir, name));
      n += st.isDirectory() ? bytesIn(join(dir, name)) : st.size;
    } catch {
      // gone meanwhile
    }
  }
  return n;
}

async function bigProcess(t: TestContext): Promise<Program> {
  const p = new Program('python3', ['-c', BIG], {}, { session: true });
  t.after(() => p.kill());
  await p.waitFor(/^ready$/, 120_000);
  return p;
}

/** Runs `ckpt checkpoint ARGS`; `interrupt` is called (with the child) once it should be signalled. */
async function checkpointInterrupted(args: string[], env: NodeJS.ProcessEnv, interrupt: (signal: (s: NodeJS.Signals) => void) => Promise<void>) {
  const child = spawn(process.execPath, [ckptBin, 'checkpoint', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
  await interrupt((s) => child.kill(s));
  const code = await closed;
  clearTimeout(timer);
  return { code, stdout, stderr };
}

async function assertLeftRunning(p: Program, store: string): Promise<void> {
  assert.ok(alive(p.pid), 'the process is alive');
  // CRIU has let it go: neither traced (t) nor stopped (T); it goes on ticking.
  assert.ok(await eventually(() => !/[tT]/.test(procState(p.pid) ?? 'T'), 30_000), `state ${procState(p.pid)}`);
  const ticks = p.lines.length;
  assert.ok(await eventually(() => p.lines.length > ticks + 2, 60_000), 'it runs on');
  assert.deepEqual(readdirSync(store), [], 'nothing is left in the store');
}

test('SIGINT at CRIU post-dump of `checkpoint --pid --kill`: aborted, the process runs on, exit 130', async (t) => {
  if (!(await needCriu(t))) return;
  const p = await bigProcess(t);
  const store = join(tempDir(t), 'store');
  mkdirSync(store, { mode: 0o700 });
  const fault = faultEnv(t, 'written:coord:gate');
  const written = gate(fault.CKPT_FAULT_DIR, 'written', 'coord');
  const r = await checkpointInterrupted(['--pid', String(p.pid), '--dir', store, '--kill'], fault, async (signal) => {
    await written.reached(240_000);
    // The images are written and the tree is frozen (traced) by CRIU.
    assert.equal(procState(p.pid), 't');
    assert.ok(bytesIn(store) > 400e6, `images written: ${bytesIn(store)} bytes`);
    // Taken before or after the gate opens, the signal comes before the commit's
    // point of no return (the commit first hashes 500 MB): aborted either way.
    signal('SIGINT');
    written.open();
  });
  assert.equal(r.code, 130, r.stderr);
  assert.equal(r.stderr, `ckpt: interrupted; checkpoint aborted, pid ${p.pid} left running\n`);
  assert.equal(r.stdout, '');
  await assertLeftRunning(p, store);
});

test('SIGTERM while the images are written: aborted, the process runs on, exit 143', async (t) => {
  if (!(await needCriu(t))) return;
  const p = await bigProcess(t);
  const store = join(tempDir(t), 'store');
  mkdirSync(store, { mode: 0o700 });
  const r = await checkpointInterrupted(['--pid', String(p.pid), '--dir', store], {}, async (signal) => {
    assert.ok(await eventually(() => bytesIn(store) > 64 << 20, 240_000, 5), 'CRIU writes images');
    signal('SIGTERM');
  });
  assert.equal(r.code, 143, r.stderr);
  assert.equal(r.stderr, `ckpt: interrupted; checkpoint aborted, pid ${p.pid} left running\n`);
  await assertLeftRunning(p, store);
});

// CKPT_FAULT (src/util/faults.ts): what parses, what is refused, and what a fault
// point does when named — in this process for fail and gate, in a child for kill,
// exit and stall (they end or hold the process that passes the point).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { faultPoint, FAULT_POINTS, parseFaults } from '../../dist/util/faults.js';
import { faultEnv, gate, root } from '../helpers.js';

test('parseFaults: points, actors, actions, @n and lists', () => {
  const f = parseFaults('save:1:kill, commit:coord:fail@2,dumped:*:gate,save:1:stall@3');
  assert.deepEqual([...f.keys()], ['save:1', 'commit:coord', 'dumped:*']);
  assert.deepEqual(f.get('save:1'), [{ action: 'kill' }, { action: 'stall', nth: 3 }]);
  assert.deepEqual(f.get('commit:coord'), [{ action: 'fail', nth: 2 }]);
  assert.deepEqual(f.get('dumped:*'), [{ action: 'gate' }]);
  assert.equal(parseFaults('').size, 0);
  assert.equal(parseFaults(' , ').size, 0);
  for (const point of FAULT_POINTS) assert.equal(parseFaults(`${point}:0:exit`).size, 1, point);
});

test('parseFaults refuses a malformed item with a usage error that says the form', () => {
  for (const bad of ['save', 'save:1', 'nowhere:1:kill', 'save:one:kill', 'save:1:explode', 'save:1:kill@', 'save:1:kill@x', 'SAVE:1:kill', 'save:-1:kill']) {
    assert.throws(() => parseFaults(bad), (err: Error & { code?: string }) => err.code === 'ECKPT_USAGE' && /<point>:<rank\|\*\|coord>:<kill\|exit\|fail\|stall\|gate>\[@n\]/.test(err.message), bad);
  }
  // One bad item refuses the whole value.
  assert.throws(() => parseFaults('save:1:kill,bad'), /'bad'/);
});

/** Runs `faultPoint(point, who)` `times` times in a child with CKPT_FAULT=spec; its exit and what it printed. */
function passInChild(spec: string, point: string, who: string, times = 1, env: NodeJS.ProcessEnv = {}) {
  const code = `
    const { faultPoint } = await import(${JSON.stringify(`${root}dist/util/faults.js`)});
    for (let i = 1; i <= ${times}; i++) {
      await faultPoint(${JSON.stringify(point)}, ${who === 'coord' ? "'coord'" : Number(who)});
      console.log('passed ' + i);
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, ...env, CKPT_FAULT: spec }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (c, s) => resolve({ code: c, signal: s, stdout, stderr })),
  );
  return { child, exited };
}

test('kill SIGKILLs the process at the point; exit ends it with status 70; @n picks the n-th pass', async () => {
  const killed = await passInChild('save:1:kill@2', 'save', '1', 3).exited;
  assert.equal(killed.signal, 'SIGKILL');
  assert.equal(killed.stdout, 'passed 1\n');
  const exited = await passInChild('save:*:exit', 'save', '3').exited;
  assert.equal(exited.code, 70);
  assert.equal(exited.stdout, '');
  // Another rank, another point, or the coordinator for `*`: nothing happens.
  for (const [point, who] of [['save', '2'], ['saved', '1'], ['save', 'coord']]) {
    const other = await passInChild('save:1:kill', point!, who!, 2).exited;
    assert.equal(other.code, 0, `${point}:${who}: ${other.stderr}`);
    assert.equal(other.stdout, 'passed 1\npassed 2\n');
  }
});

test('stall holds the process at the point (alive, going no further) until it is killed', async () => {
  const stalled = passInChild('prepare:coord:stall@2', 'prepare', 'coord', 3);
  // The first pass goes through; the second stalls: killed there, the child printed only the first.
  await new Promise<void>((resolve) => stalled.child.stdout.on('data', (d: Buffer) => /passed 1/.test(String(d)) && resolve()));
  assert.equal(stalled.child.exitCode, null);
  stalled.child.kill('SIGKILL');
  const r = await stalled.exited;
  assert.equal(r.signal, 'SIGKILL');
  assert.equal(r.stdout, 'passed 1\n');
});

test('fail throws ECKPT_FAULT naming the point and the process; without @n every pass fails', async () => {
  process.env.CKPT_FAULT = 'resume:coord:fail,resume:2:fail@1';
  try {
    for (let i = 0; i < 2; i++) {
      await assert.rejects(faultPoint('resume', 'coord'), (err: Error & { code?: string }) => err.code === 'ECKPT_FAULT' && err.message === 'fault injected at resume (coordinator)');
    }
    await assert.rejects(faultPoint('resume', 2), /fault injected at resume \(rank 2\)/);
    await faultPoint('resume', 2); // @1: only the first pass
    await faultPoint('prepare', 'coord');
  } finally {
    delete process.env.CKPT_FAULT;
  }
  await faultPoint('resume', 'coord'); // unset: nothing
});

test('gate writes <dir>/<point>.<who> with the pid, and waits until the test removes it', async (t) => {
  const fault = faultEnv(t, 'reach:1:gate');
  const child = passInChild(fault.CKPT_FAULT, 'reach', '1', 2, { CKPT_FAULT_DIR: fault.CKPT_FAULT_DIR });
  const g = gate(fault.CKPT_FAULT_DIR, 'reach', 1);
  assert.equal(await g.reached(), child.child.pid);
  assert.equal(child.child.exitCode, null, 'it waits at the gate');
  g.open();
  // Without @n it stops at every pass: the second one too.
  assert.equal(await g.reached(), child.child.pid);
  g.open();
  const r = await child.exited;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'passed 1\npassed 2\n');
});

test('a gate needs CKPT_FAULT_DIR and never writes through a link planted at its marker', async (t) => {
  const saved = { f: process.env.CKPT_FAULT, d: process.env.CKPT_FAULT_DIR };
  t.after(() => {
    for (const [k, v] of [['CKPT_FAULT', saved.f], ['CKPT_FAULT_DIR', saved.d]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  process.env.CKPT_FAULT = 'drain:4:gate';
  delete process.env.CKPT_FAULT_DIR;
  await assert.rejects(faultPoint('drain', 4), (err: Error & { code?: string }) => err.code === 'ECKPT_USAGE' && /CKPT_FAULT_DIR/.test(err.message));
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-fault-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'untouched');
  symlinkSync(victim, join(dir, 'drain.4'));
  process.env.CKPT_FAULT_DIR = dir;
  await assert.rejects(faultPoint('drain', 4), (err: Error & { code?: string }) => err.code === 'EEXIST');
  assert.equal(readFileSync(victim, 'utf8'), 'untouched');
});

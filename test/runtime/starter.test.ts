// The rank starter seam: a job starts its ranks only through the RankStarter it is
// given and signals them only through what that returned. And the helpers the
// launcher shares with isolated jobs: finding the command, the shell-style status.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture as anyFixture, privateStateDir, runJob } from '../helpers.js';
const fixture = (name: string): string => anyFixture(`runtime/${name}`);
import { LocalStarter, type RankProcess, type RankSpec, type RankStarter } from '../../dist/runtime/index.js';
import { resolveCommand } from '../../dist/util/command.js';
import { shellStatus } from '../../dist/util/exit-status.js';

before(() => privateStateDir());

/** Starts through LocalStarter and records what it was asked and what it signalled. */
class RecordingStarter implements RankStarter {
  readonly specs: RankSpec[] = [];
  readonly signals: NodeJS.Signals[] = [];
  private readonly local = new LocalStarter();
  start(spec: RankSpec): RankProcess {
    this.specs.push(spec);
    const proc = this.local.start(spec);
    const signals = this.signals;
    return {
      get pid() {
        return proc.pid;
      },
      stdout: proc.stdout,
      stderr: proc.stderr,
      exited: proc.exited,
      get hasExited() {
        return proc.hasExited;
      },
      signal(signal) {
        signals.push(signal);
        return proc.signal(signal);
      },
      terminate: (graceMs) => proc.terminate(graceMs),
    };
  }
}

test('a job starts every rank through the starter it is given', async () => {
  const starter = new RecordingStarter();
  const r = await runJob('ring.mjs', 3, { starter });
  assert.equal(r.result.status, 0, JSON.stringify(r.result));
  assert.deepEqual(starter.specs.map((s) => s.rank), [0, 1, 2]);
  for (const s of starter.specs) {
    assert.equal(s.env.CKPT_RANK, String(s.rank));
    assert.equal(s.env.CKPT_SIZE, '3');
    assert.equal(s.env.CKPT_JOB_ID, r.job.id);
    assert.deepEqual(s.args, [fixture('ring.mjs')]);
    assert.equal(s.stdout, 'pipe');
  }
  // What a rank left in its group is ended through the starter's process too.
  assert.deepEqual(starter.signals, ['SIGKILL', 'SIGKILL', 'SIGKILL']);
});

test('resolveCommand: PATH search (relative entries against the cwd), paths, and what is not found', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-cmd-'));
  try {
    mkdirSync(join(dir, 'bin'));
    const prog = join(dir, 'bin', 'prog');
    writeFileSync(prog, '#!/bin/sh\n');
    chmodSync(prog, 0o755);
    writeFileSync(join(dir, 'bin', 'data'), '');
    assert.equal(resolveCommand('prog', `/nonexistent:${join(dir, 'bin')}`), prog);
    // A relative PATH entry is where the command's exec will look: under its cwd.
    assert.equal(resolveCommand('prog', 'bin', dir), prog);
    assert.throws(() => resolveCommand('prog', 'bin', tmpdir()), { code: 'ECKPT_COMMAND_NOT_FOUND' });
    assert.equal(resolveCommand('./bin/prog', '', dir), prog);
    assert.equal(resolveCommand(prog, ''), prog);
    assert.throws(() => resolveCommand('data', join(dir, 'bin')), { code: 'ECKPT_COMMAND_NOT_FOUND' }, 'not executable');
    assert.throws(() => resolveCommand('bin', dir), { code: 'ECKPT_COMMAND_NOT_FOUND' }, 'a directory');
    assert.throws(() => resolveCommand('', '/bin'), { code: 'ECKPT_USAGE' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('shellStatus: the exit code, or 128+N for signal N', () => {
  assert.equal(shellStatus({ code: 0, signal: null }), 0);
  assert.equal(shellStatus({ code: 3, signal: null }), 3);
  assert.equal(shellStatus({ code: null, signal: 'SIGKILL' }), 137);
  assert.equal(shellStatus({ code: null, signal: 'SIGTERM' }), 143);
  assert.equal(shellStatus({ code: null, signal: null }), 1);
});

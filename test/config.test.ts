// The table of CKPT_* environment variables (src/config.ts): the README shows it as
// it is, every variable the sources name is in it, each parser refuses a malformed
// value with one line, and an unset or empty variable reads as its default.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { CONFIG, envFlag, envNumber, envString, readSetting, type Setting, type SettingName } from '../dist/config.js';
import { CkptError } from '../dist/errors.js';
import { root } from './helpers.js';

const names = Object.keys(CONFIG) as SettingName[];
const spec = (name: SettingName): Setting => CONFIG[name];

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p, ext) : ext.test(n) ? [p] : [];
  });
}

test("README.md's table of variables is current (scripts/gen-env-table.mjs --check)", () => {
  const out = execFileSync(process.execPath, [join(root, 'scripts', 'gen-env-table.mjs'), '--check'], { encoding: 'utf8' });
  assert.match(out, /README\.md is current/);
});

test('every CKPT_* variable named in src/, scripts/ and bin/ is in the table', () => {
  const missing: string[] = [];
  const seen = new Set<string>();
  const sources = [...files(join(root, 'src'), /\.ts$/), ...files(join(root, 'scripts'), /\.mjs$/), ...files(join(root, 'bin'), /./)];
  for (const file of sources) {
    if (relative(root, file) === join('src', 'config.ts')) continue;
    // Not preceded by a letter or digit: ECKPT_* are error codes, not variables.
    for (const m of readFileSync(file, 'utf8').matchAll(/(?<![A-Za-z0-9_])CKPT_[A-Z0-9_]+/g)) {
      seen.add(m[0]);
      if (!(m[0] in CONFIG)) missing.push(`${relative(root, file)}: ${m[0]}`);
    }
  }
  assert.deepEqual(missing, []);
  assert.ok(seen.size > 25, `found ${seen.size} names`);
});

test('every entry says what it means, who sets it and its default', () => {
  for (const name of names) {
    const s = spec(name);
    assert.ok(s.meaning.length > 10 && !s.meaning.includes('\n'), `${name}: one line of meaning`);
    assert.ok(s.defaultText.length > 0, `${name}: default text`);
    assert.ok(['user', 'ckpt', 'tests', 'build'].includes(s.setBy), `${name}: set by`);
  }
  for (const name of ['CKPT_JOB_ID', 'CKPT_RANK', 'CKPT_SIZE', 'CKPT_COORD', 'CKPT_JOB_SECRET', 'CKPT_RESTART_SNAPSHOT'] as const) {
    assert.equal(spec(name).setBy, 'ckpt', `${name} is set by ckpt for its ranks`);
  }
});

/** A value each kind refuses (string and list take any text). */
const MALFORMED: Partial<Record<Setting['kind'], string[]>> = {
  ms: ['soon', '-5', '1.5', '1e3', ' 10'],
  count: ['two', '-1', '3.0'],
  int: ['high', '-1'],
  bytes: ['64K', '-1', String(Number.MAX_SAFE_INTEGER)],
  flag: ['maybe', '2'],
  path: ['relative/dir', '~/x'],
  enum: ['bogus'],
};

test('each parser refuses a malformed value: ECKPT_USAGE, one line naming the variable and the value', () => {
  let checked = 0;
  for (const name of names) {
    for (const value of MALFORMED[spec(name).kind] ?? []) {
      assert.throws(
        () => readSetting(name, { [name]: value }),
        (err: unknown) => {
          assert.ok(err instanceof CkptError, `${name}=${value}`);
          assert.equal(err.code, 'ECKPT_USAGE');
          assert.equal(err.message, err.message.split('\n')[0]);
          assert.ok(err.message.startsWith(`${name} must be `), err.message);
          assert.ok(err.message.endsWith(`, not '${value}'`), err.message);
          return true;
        },
      );
      checked++;
    }
  }
  assert.ok(checked > 40);
});

test('range limits: the smallest and the largest accepted value, and one past each', () => {
  assert.equal(envNumber('CKPT_CRIU_LOG_LEVEL', { CKPT_CRIU_LOG_LEVEL: '0' }), 0);
  assert.equal(envNumber('CKPT_CRIU_LOG_LEVEL', { CKPT_CRIU_LOG_LEVEL: '4' }), 4);
  assert.throws(() => envNumber('CKPT_CRIU_LOG_LEVEL', { CKPT_CRIU_LOG_LEVEL: '5' }), /^CkptError: CKPT_CRIU_LOG_LEVEL must be a whole number from 0 to 4, not '5'$/);
  assert.equal(envNumber('CKPT_SELF_INLINE_BYTES', { CKPT_SELF_INLINE_BYTES: '0' }), 0);
  assert.equal(envNumber('CKPT_SELF_INLINE_BYTES', { CKPT_SELF_INLINE_BYTES: String(512 << 10) }), 512 << 10);
  assert.throws(() => envNumber('CKPT_SELF_INLINE_BYTES', { CKPT_SELF_INLINE_BYTES: String((512 << 10) + 1) }), /must be a byte count from 0 to 524288/);
  assert.throws(() => envNumber('CKPT_CHECKPOINT_PHASE_MS', { CKPT_CHECKPOINT_PHASE_MS: '0' }), /must be a whole number of milliseconds from 1 to 2147483647, not '0'/);
  assert.equal(envNumber('CKPT_TIMEOUT_MS', { CKPT_TIMEOUT_MS: '0' }), 0, '0: no timeout');
  // Milliseconds: at most what a Node timer can hold (a longer one fires at once).
  assert.equal(envNumber('CKPT_TIMEOUT_MS', { CKPT_TIMEOUT_MS: '2147483647' }), 2147483647);
  assert.throws(() => envNumber('CKPT_TIMEOUT_MS', { CKPT_TIMEOUT_MS: '2147483648' }), /^CkptError: CKPT_TIMEOUT_MS must be a whole number of milliseconds from 0 to 2147483647, not '2147483648'$/);
  assert.equal(envNumber('CKPT_RANK', { CKPT_RANK: '0' }), 0);
  assert.throws(() => envNumber('CKPT_DUMP_CONCURRENCY', { CKPT_DUMP_CONCURRENCY: '0' }), /CKPT_DUMP_CONCURRENCY must be a positive whole number, not '0'/);
});

test('well-formed values are read as given', () => {
  assert.equal(envNumber('CKPT_HELLO_TIMEOUT_MS', { CKPT_HELLO_TIMEOUT_MS: '250' }), 250);
  assert.equal(envNumber('CKPT_DUMP_CONCURRENCY', { CKPT_DUMP_CONCURRENCY: '2' }), 2);
  for (const v of ['1', 'true', 'YES', 'on']) assert.equal(envFlag('CKPT_NO_NATIVE', { CKPT_NO_NATIVE: v }), true, v);
  for (const v of ['0', 'false', 'no', 'Off']) assert.equal(envFlag('CKPT_ISOLATE_USERNS', { CKPT_ISOLATE_USERNS: v }), false, v);
  assert.equal(envString('CKPT_STATE_DIR', { CKPT_STATE_DIR: '/srv/ckpt' }), '/srv/ckpt');
  assert.equal(envString('CKPT_CRS', { CKPT_CRS: 'self' }), 'self');
  assert.equal(envString('CKPT_JOB_ID', { CKPT_JOB_ID: '0a1b2c3d' }), '0a1b2c3d');
});

test('unset or empty: the default (the values ckpt used before the table)', () => {
  const defaults: Record<string, unknown> = {
    CKPT_HELLO_TIMEOUT_MS: 10_000,
    CKPT_CHECKPOINT_PHASE_MS: 30_000,
    CKPT_CHECKPOINT_REACH_MS: 60_000,
    CKPT_CHECKPOINT_DUMP_MS: undefined, // the reader's: max(phase, 120 s)
    CKPT_DUMP_CONCURRENCY: undefined, // all ranks
    CKPT_SELF_INLINE_BYTES: 64 << 10,
    CKPT_RESTORE_TIMEOUT_MS: 120_000,
    CKPT_TIMEOUT_MS: 600_000,
    CKPT_JOIN_TIMEOUT_MS: 70_000,
    CKPT_CONNECT_TIMEOUT_MS: 10_000,
    CKPT_CRIU_LOG_LEVEL: 3,
    CKPT_ISOLATE_USERNS: true,
    CKPT_NO_NATIVE: false,
    CKPT_DEBUG: false,
    CKPT_FAULT_DIR: undefined, // a gate needs a private directory, never a shared default
    CKPT_STATE_DIR: undefined,
    CKPT_HOME: undefined,
    CKPT_CRIU: undefined,
    CKPT_CRS: undefined,
    CKPT_JOB_ID: undefined,
  };
  for (const [name, value] of Object.entries(defaults)) {
    assert.equal(readSetting(name as SettingName, {}), value, `${name} unset`);
    assert.equal(readSetting(name as SettingName, { [name]: '' }), value, `${name} empty`);
  }
  for (const name of names) assert.equal(readSetting(name, {}), spec(name).default, `${name} unset`);
  assert.equal(envFlag('CKPT_DEBUG', {}), false);
});

test('read at call time from process.env by default', (t) => {
  const saved = process.env.CKPT_CHECKPOINT_PHASE_MS;
  t.after(() => {
    if (saved === undefined) delete process.env.CKPT_CHECKPOINT_PHASE_MS;
    else process.env.CKPT_CHECKPOINT_PHASE_MS = saved;
  });
  process.env.CKPT_CHECKPOINT_PHASE_MS = '1234';
  assert.equal(envNumber('CKPT_CHECKPOINT_PHASE_MS'), 1234);
  delete process.env.CKPT_CHECKPOINT_PHASE_MS;
  assert.equal(envNumber('CKPT_CHECKPOINT_PHASE_MS'), 30_000);
});

// CRIU discovery (findCriu/probeCriu) and `ckpt setup criu`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { criuErrorLine } from '../../dist/criu/locate/check.js';
import { findCriu } from '../../dist/criu/locate/find.js';
import { privileges, probeCriu } from '../../dist/criu/locate/probe.js';
import { compareVersions, MIN_CRIU_VERSION, parseCriuVersion } from '../../dist/criu/locate/version.js';
import { parseAptSources } from '../../dist/criu/install/apt-sources.js';
import { debianMirror } from '../../dist/criu/install/plan.js';
import { CkptError, ErrorCodes } from '../../dist/errors.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const ckpt = join(root, 'bin', 'ckpt');
const requireCriu = process.env.CKPT_REQUIRE_CRIU === '1';
const isRoot = process.geteuid?.() === 0;

/** The environment for a child ckpt: no CKPT_CRIU unless given. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  if (!('CKPT_CRIU' in extra)) delete env.CKPT_CRIU;
  delete env.CKPT_DEBUG;
  return env;
}

function runCkpt(args: string[], env: NodeJS.ProcessEnv, timeout = 600_000) {
  const r = spawnSync(process.execPath, [ckpt, ...args], { env, encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** A stand-in criu: a shell script with a given version and `check` outcome, counting its checks. */
function fakeCriu(dir: string, version: string, checkOk: boolean): string {
  const path = join(dir, `criu-${version}-${checkOk ? 'ok' : 'bad'}`);
  const counter = `${path}.checks`;
  writeFileSync(
    path,
    [
      '#!/bin/sh',
      'case "$1" in',
      `  --version) echo "Version: ${version}" ;;`,
      `  check) echo x >> '${counter}'`,
      checkOk
        ? '    echo "Looks good." ;;'
        : '    echo "(00.001) Error (criu/vdso.c:240): vdso: Unexpected rt vDSO area bounds" >&2; exit 1 ;;',
      '  *) exit 2 ;;',
      'esac',
      '',
    ].join('\n'),
  );
  chmodSync(path, 0o755);
  return path;
}

function checksRun(path: string): number {
  try {
    return readFileSync(`${path}.checks`, 'utf8').split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

test('parses criu --version output and criu error lines', () => {
  assert.deepEqual(parseCriuVersion('Version: 4.2.1\n'), { major: 4, minor: 2, sublevel: 1 });
  assert.deepEqual(parseCriuVersion('Version: 4.2\nGitID: v4.2\n'), { major: 4, minor: 2, sublevel: 0 });
  assert.equal(parseCriuVersion('criu: unknown'), undefined);
  assert.ok(compareVersions({ major: 3, minor: 17, sublevel: 1 }, MIN_CRIU_VERSION) < 0);
  assert.ok(compareVersions({ major: 4, minor: 2, sublevel: 1 }, MIN_CRIU_VERSION) >= 0);
  assert.equal(
    criuErrorLine(
      '(00.000) rlimit: Can\'t setup RLIMIT_NOFILE for self: Operation not permitted\n(00.012) Error (criu/vdso.c:240): vdso: Unexpected rt vDSO area bounds\n',
    ),
    'vdso: Unexpected rt vDSO area bounds',
  );
});

test('reads the Debian mirror from apt sources (deb822 and one-line)', () => {
  const deb822 = parseAptSources(
    [
      'Types: deb',
      'URIs: http://mirror.example/debian',
      'Suites: bookworm bookworm-updates',
      'Components: main',
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
      '',
      'Types: deb',
      'URIs: http://mirror.example/debian-security',
      'Suites: bookworm-security',
      'Components: main',
    ].join('\n'),
    '/etc/apt/sources.list.d/debian.sources',
  );
  assert.equal(deb822.length, 2);
  assert.equal(debianMirror(deb822).uri, 'http://mirror.example/debian');
  assert.equal(debianMirror(deb822).signedBy, '/usr/share/keyrings/debian-archive-keyring.gpg');

  const classic = parseAptSources(
    [
      '# comment',
      'deb http://mirror.example/debian-security bookworm-security main',
      'deb-src http://mirror.example/debian bookworm main',
      'deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main contrib',
    ].join('\n'),
    '/etc/apt/sources.list',
  );
  assert.equal(classic.length, 2);
  assert.equal(debianMirror(classic).uri, 'http://mirror.example/debian');
  assert.equal(debianMirror(classic).signedBy, '/k.gpg');

  assert.throws(() => debianMirror([]), (err: unknown) => err instanceof CkptError && err.code === ErrorCodes.CRIU_INSTALL);
});

test('rejects a CKPT_CRIU that is too old or fails criu check, and caches passing checks', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-criu-test-'));
  const savedState = process.env.CKPT_STATE_DIR;
  process.env.CKPT_STATE_DIR = join(dir, 'state');
  t.after(() => {
    if (savedState === undefined) delete process.env.CKPT_STATE_DIR;
    else process.env.CKPT_STATE_DIR = savedState;
    rmSync(dir, { recursive: true, force: true });
  });

  const old = fakeCriu(dir, '3.17.1', true);
  await assert.rejects(findCriu({ env: { CKPT_CRIU: old } }), (err: unknown) => {
    assert.ok(err instanceof CkptError);
    assert.equal(err.code, ErrorCodes.CRIU_TOO_OLD);
    assert.match(err.message, /3\.17\.1/);
    assert.match(err.hint ?? '', /ckpt setup criu/);
    return true;
  });

  const bad = fakeCriu(dir, '4.2.1', false);
  await assert.rejects(findCriu({ env: { CKPT_CRIU: bad } }), (err: unknown) => {
    assert.ok(err instanceof CkptError);
    assert.equal(err.code, ErrorCodes.CRIU_CHECK_FAILED);
    assert.match(err.message, /vdso: Unexpected rt vDSO area bounds/);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
  const report = await probeCriu({ env: { CKPT_CRIU: bad } });
  assert.equal(report.ok, false);
  assert.equal(report.found, true);
  assert.equal(report.check, 'failed');
  assert.equal(report.code, ErrorCodes.CRIU_CHECK_FAILED);
  assert.match(report.hint ?? '', /ckpt setup criu/);
  assert.equal(typeof report.privileges.capSysAdmin, 'boolean');

  const good = fakeCriu(dir, '4.2.1', true);
  const first = await findCriu({ env: { CKPT_CRIU: good } });
  assert.deepEqual(first, { path: good, version: { major: 4, minor: 2, sublevel: 1 }, source: 'env' });
  await findCriu({ env: { CKPT_CRIU: good } });
  assert.equal(checksRun(good), 1, 'the second call answers from the cache');
  await findCriu({ env: { CKPT_CRIU: good }, cache: false });
  assert.equal(checksRun(good), 2, 'cache: false runs criu check again');
  // A changed binary (new mtime/size) is checked again.
  writeFileSync(good, `${readFileSync(good, 'utf8')}# changed\n`);
  await findCriu({ env: { CKPT_CRIU: good } });
  assert.equal(checksRun(good), 3);
});

test('privileges() reads CapEff', () => {
  const p = privileges();
  assert.equal(p.root, isRoot);
  if (isRoot) assert.equal(typeof p.capEff, 'string');
});

test('CKPT_CRIU=/nonexistent: one-line error, non-zero exit, no stack trace', () => {
  const r = runCkpt(['setup', 'criu'], childEnv({ CKPT_CRIU: '/nonexistent' }), 60_000);
  assert.notEqual(r.code, 0);
  assert.equal(r.code, 1);
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0] ?? '', /^ckpt: .*\/nonexistent.*\[ECKPT_CRIU_NOT_FOUND\]$/);
  assert.doesNotMatch(r.stderr, /^\s+at /m);

  const j = runCkpt(['setup', 'criu', '--json'], childEnv({ CKPT_CRIU: '/nonexistent' }), 60_000);
  assert.equal(j.code, 1);
  const out = JSON.parse(j.stdout) as { ok: boolean; error: { code: string; message: string } };
  assert.equal(out.ok, false);
  assert.equal(out.error.code, ErrorCodes.CRIU_NOT_FOUND);
  assert.doesNotMatch(j.stderr, /^\s+at /m);
});

test('ckpt setup criu --json is idempotent (real install)', { timeout: 20 * 60_000 }, (t) => {
  if (!isRoot && !requireCriu) {
    t.skip('installing CRIU needs root');
    return;
  }
  const env = childEnv();
  const first = runCkpt(['setup', 'criu', '--json'], env);
  assert.equal(first.code, 0, `first run failed:\n${first.stdout}\n${first.stderr}`);
  const a = JSON.parse(first.stdout) as { ok: boolean; action: string; installed: boolean; path: string; version: string };
  assert.equal(a.ok, true);
  assert.ok(existsSync(a.path), a.path);
  const second = runCkpt(['setup', 'criu', '--json'], env);
  assert.equal(second.code, 0, `second run failed:\n${second.stdout}\n${second.stderr}`);
  const b = JSON.parse(second.stdout) as typeof a;
  assert.equal(b.installed, false);
  assert.notEqual(b.action, 'installed');
  assert.equal(b.path, a.path);
  assert.equal(b.version, a.version);
});

test('findCriu returns a CRIU ≥ 4.2 that passes criu check', async (t) => {
  let info;
  try {
    info = await findCriu({ cache: false });
  } catch (err) {
    if (!requireCriu && err instanceof CkptError && err.code === ErrorCodes.CRIU_NOT_FOUND) {
      t.skip('no CRIU installed (set CKPT_REQUIRE_CRIU=1 to make this a failure)');
      return;
    }
    throw err;
  }
  assert.ok(compareVersions(info.version, MIN_CRIU_VERSION) >= 0, JSON.stringify(info.version));
  assert.ok(existsSync(info.path));
  const report = await probeCriu();
  assert.equal(report.ok, true);
  assert.equal(report.check, 'passed');
  assert.equal(report.path, info.path);
});

// ckpt run --output DIR: an existing directory keeps its mode, one ckpt creates is
// 0700; the rank files are 0600, created exclusively, never through a symlink, and a
// directory writable by others is refused unless it is sticky.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, lchownSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertNoneLeft, privateStateDir, ckpt, uniqueMark } from '../helpers.js';

const mode = (p: string): number => statSync(p).mode & 0o7777;
const isRoot = process.geteuid?.() === 0;
const NOBODY = 65534;

let stateDir = '';
before(() => {
  stateDir = privateStateDir();
});

/** A fresh directory of the given mode (umask aside), removed at exit. */
function dirWithMode(m: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-test-out-'));
  chmodSync(dir, m);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const echo = ['sh', '-c', 'echo hello $CKPT_RANK; echo oops $CKPT_RANK >&2'];

test('--output on an existing 0755 directory: the mode stays 0755, the rank files are 0600', async () => {
  const dir = dirWithMode(0o755);
  const r = await ckpt(['run', '-n', '2', '--output', dir, ...echo]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(mode(dir), 0o755);
  assert.deepEqual(readdirSync(dir).sort(), ['rank-0.err', 'rank-0.out', 'rank-1.err', 'rank-1.out']);
  for (const k of [0, 1]) {
    assert.equal(readFileSync(join(dir, `rank-${k}.out`), 'utf8'), `hello ${k}\n`);
    assert.equal(readFileSync(join(dir, `rank-${k}.err`), 'utf8'), `oops ${k}\n`);
    for (const s of ['out', 'err']) assert.equal(mode(join(dir, `rank-${k}.${s}`)), 0o600);
  }
});

test('--output creates a missing directory, and its missing parents, 0700', async () => {
  const base = dirWithMode(0o755);
  const dir = join(base, 'a', 'b');
  const r = await ckpt(['run', '-n', '1', '--output', dir, ...echo]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(mode(base), 0o755, 'the existing parent is left as it was');
  assert.equal(mode(join(base, 'a')), 0o700);
  assert.equal(mode(dir), 0o700);
  assert.equal(mode(join(dir, 'rank-0.out')), 0o600);
});

test('--output reuses rank files of our own: truncated and made 0600', async () => {
  const dir = dirWithMode(0o700);
  writeFileSync(join(dir, 'rank-0.out'), 'an older run, a much longer line\n', { mode: 0o644 });
  chmodSync(join(dir, 'rank-0.out'), 0o644);
  const r = await ckpt(['run', '-n', '1', '--output', dir, ...echo]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(join(dir, 'rank-0.out'), 'utf8'), 'hello 0\n');
  assert.equal(mode(join(dir, 'rank-0.out')), 0o600);
});

test('--output refuses a directory writable by others that is not sticky; nothing starts', async () => {
  const dir = dirWithMode(0o777);
  const mark = uniqueMark();
  const r = await ckpt(['run', '-n', '2', '--output', dir, ...echo], { MARK: mark });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^ckpt: --output .*writable by others \(mode 777\) and not sticky.*\[ECKPT_PERMISSION\]$/m);
  assert.deepEqual(readdirSync(dir), [], 'no file was created');
  assert.equal(mode(dir), 0o777);
  await assertNoneLeft('MARK', mark);
});

test('--output in a sticky shared directory: a planted symlink or file of another user is refused, not written through', async (t) => {
  if (!isRoot) return t.skip('planting files of another user needs root');
  const dir = dirWithMode(0o1777);
  const victim = join(stateDir, 'victim');
  writeFileSync(victim, 'precious\n');
  const link = join(dir, 'rank-1.err');
  symlinkSync(victim, link);
  lchownSync(link, NOBODY, NOBODY);
  const mark = uniqueMark();
  let r = await ckpt(['run', '-n', '2', '--output', dir, ...echo], { MARK: mark });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /rank-1\.err is a symbolic link: not following it.*\[ECKPT_PERMISSION\]/);
  assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
  assert.ok(lstatSync(link).isSymbolicLink());
  await assertNoneLeft('MARK', mark);

  // A regular file another user left under a rank file's name.
  rmSync(link);
  const theirs = join(dir, 'rank-0.out');
  writeFileSync(theirs, 'theirs\n');
  chmodSync(theirs, 0o666);
  lchownSync(theirs, NOBODY, NOBODY);
  r = await ckpt(['run', '-n', '2', '--output', dir, ...echo], { MARK: mark });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /rank-0\.out exists and is not a file of ours.*\[ECKPT_PERMISSION\]/);
  assert.equal(readFileSync(theirs, 'utf8'), 'theirs\n');

  // Nothing planted: the files are created exclusively, 0600; the directory keeps its mode.
  rmSync(theirs);
  for (const name of readdirSync(dir)) rmSync(join(dir, name));
  r = await ckpt(['run', '-n', '2', '--output', dir, ...echo]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(mode(dir), 0o1777);
  for (const k of [0, 1]) assert.equal(mode(join(dir, `rank-${k}.out`)), 0o600);
  assert.equal(readFileSync(join(dir, 'rank-1.out'), 'utf8'), 'hello 1\n');
});

test("--output DIR that another user planted as a link to a directory of root's: refused, nothing written there", async (t) => {
  if (!isRoot) return t.skip('planting files of another user needs root');
  const shared = dirWithMode(0o1777);
  const roots = dirWithMode(0o755);
  writeFileSync(join(roots, 'rank-0.out'), 'precious\n');
  const link = join(shared, 'out');
  symlinkSync(roots, link);
  lchownSync(link, NOBODY, NOBODY);
  const mark = uniqueMark();
  const r = await ckpt(['run', '-n', '1', '--output', link, ...echo], { MARK: mark });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /belongs to uid 65534: not followed.*\[ECKPT_PERMISSION\]/);
  assert.deepEqual(readdirSync(roots), ['rank-0.out']);
  assert.equal(readFileSync(join(roots, 'rank-0.out'), 'utf8'), 'precious\n');
  await assertNoneLeft('MARK', mark);
});

test('--output naming a file is refused', async () => {
  const dir = dirWithMode(0o700);
  const file = join(dir, 'file');
  writeFileSync(file, '');
  const r = await ckpt(['run', '-n', '1', '--output', file, ...echo]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /not a directory/);
  assert.ok(existsSync(file));
});

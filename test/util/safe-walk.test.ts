// Root reaching directories by path (src/util/safe-walk.ts, used by DirFd.open and
// mkdirPrivate): a link another user planted on the way is refused, never followed —
// nothing is made or opened where it points; root's own links are followed; missing
// directories are made 0700; a directory of another user is not root's to keep things in.
// Run as root, with links and directories given to the tests' non-root user.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, fstatSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { walkToDir } from '../../dist/util/safe-walk.js';
import { mkdirPrivate, writeFileAtomic } from '../../dist/util/fsx.js';
import { beginSnapshot } from '../../dist/store/store.js';
import { needRoot, tempDir, testUser } from '../helpers.js';

/** A shared directory (1777) holding `name`, a link of the test user's to `target`. */
function plantedLink(t: TestContext, target: string, name = 'jobs'): string {
  const shared = tempDir(t);
  execFileSync('chmod', ['1777', shared]);
  const link = join(shared, name);
  symlinkSync(target, link);
  const user = testUser();
  execFileSync('chown', ['-h', `${user.uid}:${user.gid}`, link]);
  return link;
}

test("another user's link on the way: refused for opening, creating, a snapshot store; nothing made where it points", (t) => {
  if (!needRoot(t)) return;
  const victim = tempDir(t);
  const link = plantedLink(t, victim);
  const refused = { code: 'ECKPT_PERMISSION', message: /\(jobs\) belongs to uid \d+: not followed/ };
  assert.throws(() => walkToDir(link), refused);
  assert.throws(() => walkToDir(join(link, 'a', 'b'), 0o700), refused);
  assert.throws(() => mkdirPrivate(join(link, 'state')), refused);
  assert.throws(() => beginSnapshot(join(link, 'store')), refused);
  assert.deepEqual(readdirSync(victim), []);
});

test("root's own links are followed; missing directories are made 0700; another user's directory is not root's to keep things in", (t) => {
  if (!needRoot(t)) return;
  const base = tempDir(t);
  mkdirSync(join(base, 'real'));
  symlinkSync(join(base, 'real'), join(base, 'alias'));
  const fd = walkToDir(join(base, 'alias', 'x', 'y'), 0o700);
  try {
    assert.equal(fstatSync(fd).ino, statSync(join(base, 'real', 'x', 'y')).ino);
  } finally {
    closeSync(fd);
  }
  for (const d of ['x', 'x/y']) assert.equal(statSync(join(base, 'real', d)).mode & 0o777, 0o700);
  const user = testUser();
  const theirs = join(base, 'theirs');
  mkdirSync(theirs, { mode: 0o700 });
  execFileSync('chown', [`${user.uid}:${user.gid}`, theirs]);
  assert.throws(() => mkdirPrivate(theirs), { code: 'ECKPT_PERMISSION', message: /belongs to uid/ });
});

test("a file written atomically is never written through a link planted under its temporary name", (t) => {
  const dir = tempDir(t);
  const victim = join(tempDir(t), 'victim');
  writeFileSync(victim, 'precious\n');
  const path = join(dir, 'registry.json');
  symlinkSync(victim, `${path}.tmp-${process.pid}`);
  writeFileAtomic(path, '{}\n');
  assert.equal(execFileSync('cat', [victim], { encoding: 'utf8' }), 'precious\n');
  assert.equal(execFileSync('cat', [path], { encoding: 'utf8' }), '{}\n');
});

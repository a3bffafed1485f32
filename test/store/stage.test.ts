// store/stage.ts: what --stage accepts, the copy of a staged rank into a snapshot's
// directory (checksums of the copies, links not followed), and the clean-up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { copyStaged, discardStaged, stageDirProblem, stagedRankDir } from '../../dist/store/stage.js';
import { hashFiles } from '../../dist/store/checksum.js';
import { tempDir } from '../helpers.js';

test('stageDirProblem: an absolute directory of yours or root\'s, closed to others; anything else says why', (t) => {
  const dir = tempDir(t);
  const euid = process.geteuid!();
  assert.equal(stageDirProblem(dir), undefined);
  assert.match(stageDirProblem('rel/dir')!, /'rel\/dir' is not an absolute path/);
  assert.match(stageDirProblem(join(dir, 'nosuch'))!, /no such directory/);
  writeFileSync(join(dir, 'file'), '');
  assert.match(stageDirProblem(join(dir, 'file'))!, /is not a directory/);
  symlinkSync(dir, join(dir, 'link'));
  assert.match(stageDirProblem(join(dir, 'link'))!, /is not a directory \(a symbolic link\)/);
  mkdirSync(join(dir, 'open'));
  chmodSync(join(dir, 'open'), 0o1777);
  assert.match(stageDirProblem(join(dir, 'open'))!, /writable by other users \(mode 1777\)/);
  mkdirSync(join(dir, 'group'));
  chmodSync(join(dir, 'group'), 0o770);
  assert.match(stageDirProblem(join(dir, 'group'))!, /writable by other users \(mode 770\)/);
  if (euid === 0) {
    mkdirSync(join(dir, 'theirs'), { mode: 0o700 });
    chownSync(join(dir, 'theirs'), 4242, 4242);
    assert.match(stageDirProblem(join(dir, 'theirs'))!, /owned by uid 4242, not root/);
    // Another user's view: root's directory is fine, someone else's is not.
    assert.equal(stageDirProblem(dir, 4243), undefined);
    assert.match(stageDirProblem(join(dir, 'theirs'), 4243)!, /owned by uid 4242, not you or root/);
    // Root's directory inside another user's (or one others may write, not sticky): they could put theirs in its place.
    mkdirSync(join(dir, 'theirs', 'stage'), { mode: 0o700 });
    assert.match(stageDirProblem(join(dir, 'theirs', 'stage'))!, /theirs \(on the way to .*\) belongs to uid 4242: another user could replace/);
    mkdirSync(join(dir, 'group', 'stage'), { mode: 0o700 });
    assert.match(stageDirProblem(join(dir, 'group', 'stage'))!, /group \(on the way to .*\) is writable by other users/);
    // Inside a sticky one (as /tmp is): fine.
    mkdirSync(join(dir, 'open', 'stage'), { mode: 0o700 });
    assert.equal(stageDirProblem(join(dir, 'open', 'stage')), undefined);
  }
});

test('copyStaged: the staged tree copied, fsynced and checksummed where it now is; links not copied; discardStaged removes the rank and empty parents', async (t) => {
  const stage = tempDir(t);
  const from = stagedRankDir(stage, 'job1', 3, 'rank-0');
  const other = stagedRankDir(stage, 'job1', 3, 'rank-1');
  mkdirSync(join(from, 'images'), { recursive: true });
  mkdirSync(other, { recursive: true });
  writeFileSync(join(from, 'images', 'core-1.img'), Buffer.alloc(100_000, 7));
  writeFileSync(join(from, 'images', 'pages-1.img'), 'pages');
  symlinkSync('/etc/passwd', join(from, 'images', 'planted'));
  const to = join(tempDir(t), 'rank-0');
  mkdirSync(to, { mode: 0o700 });
  const files = await copyStaged(from, to);
  assert.deepEqual(files.map((f) => f.path).sort(), ['images/core-1.img', 'images/pages-1.img']);
  assert.deepEqual(files, await hashFiles(to, files.map((f) => join(to, f.path))));
  assert.equal(readFileSync(join(to, 'images', 'pages-1.img'), 'utf8'), 'pages');
  assert.equal(existsSync(join(to, 'images', 'planted')), false, 'a link is not copied');
  assert.equal(statSync(join(to, 'images')).mode & 0o777, 0o700);
  // A second copy into the same place never writes through what is there.
  await assert.rejects(copyStaged(from, to), /EEXIST|exists/);

  await discardStaged(from);
  assert.equal(existsSync(from), false);
  assert.ok(existsSync(join(stage, 'job1', '3')), "rank 1's is still there: its checkpoint's directory stays");
  await discardStaged(other);
  assert.equal(existsSync(join(stage, 'job1')), false, 'the last rank takes the empty checkpoint and job directories');
  assert.ok(existsSync(stage), 'never the stage directory itself');
});

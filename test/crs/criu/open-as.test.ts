// Root restoring another user's process reopens the files it wrote as that user
// (src/crs/criu/open-as.ts, through fileInheritance): a directory on the path that the
// user swapped for a link to a root-only one leads nowhere; a missing file is made
// theirs, 0600; a FIFO is refused at once. Real files, a real shell as the tests' user.
// (Root cannot CRIU-dump another user's process on this kernel without
// CAP_SYS_RESOURCE, so the restore itself is not run here.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, readdirSync, readFileSync, statSync, symlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileInheritance } from '../../../dist/crs/criu/files.js';
import { needRoot, tempDir, testUser, userDir } from '../../helpers.js';

/** A recorded file of pid 4242 whose size changed since the dump (so it is reopened). */
const recorded = (path: string) => [{ path, pid: 4242, fds: [1], append: false, size: 1 << 30 }];

test("a directory swapped for a link to a root-only one: refused as the user, nothing created there", async (t) => {
  if (!needRoot(t)) return;
  const user = testUser();
  const home = userDir(t, user);
  const rootOnly = tempDir(t);
  symlinkSync(rootOnly, join(home, 'logs'));
  execFileSync('chown', ['-h', `${user.uid}:${user.gid}`, join(home, 'logs')]);
  await assert.rejects(fileInheritance(recorded(join(home, 'logs', 'out.log')), 4242, {}, user.uid), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ECKPT_PERMISSION');
    assert.match(err.message, new RegExp(`as uid ${user.uid}: .*Permission denied`));
    return true;
  });
  assert.deepEqual(readdirSync(rootOnly), []);
  // Nor does root follow it for a snapshot of its own process.
  await assert.rejects(fileInheritance(recorded(join(home, 'logs', 'out.log')), 4242, {}), { code: 'ECKPT_PERMISSION', message: /belongs to uid \d+: not followed/ });
  assert.deepEqual(readdirSync(rootOnly), []);
});

test('a missing file is created by the user (0600, theirs); the descriptor appends to it', async (t) => {
  if (!needRoot(t)) return;
  const user = testUser();
  const home = userDir(t, user);
  const log = join(home, 'out.log');
  const got = await fileInheritance(recorded(log), 4242, {}, user.uid);
  assert.equal(got.files.length, 1);
  writeSync(got.opened[0]!, 'from the restored process\n');
  for (const fd of got.opened) closeSync(fd);
  const st = statSync(log);
  assert.equal(st.uid, user.uid);
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(readFileSync(log, 'utf8'), 'from the restored process\n');
});

test('a FIFO where the file was: refused at once, not waited on', async (t) => {
  if (!needRoot(t)) return;
  const user = testUser();
  const home = userDir(t, user);
  const fifo = join(home, 'out.log');
  execFileSync('mkfifo', ['-m', '0600', fifo]);
  execFileSync('chown', [`${user.uid}:${user.gid}`, fifo]);
  await assert.rejects(fileInheritance(recorded(fifo), 4242, {}, user.uid), { code: 'ECKPT_PERMISSION', message: /a FIFO/ });
});

// The system tools root runs are the ones nobody else could replace: real files in
// real directories, one of them open to everyone.
import test, { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { trustedPath, trustedTool } from '../../dist/util/trusted-tool.js';
import { needRoot, tempDir, testUser } from '../helpers.js';

/** A closed directory and one anyone may write (not sticky), each with a tool of that name. */
function dirs(t: TestContext, name: string): { closed: string; open: string } {
  const base = tempDir(t);
  const closed = join(base, 'closed');
  const open = join(base, 'open');
  for (const d of [closed, open]) {
    mkdirSync(d, { mode: 0o755 });
    writeFileSync(join(d, name), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  }
  chmodSync(open, 0o777);
  return { closed, open };
}

test('as root: a tool in a PATH entry another user can write is passed over for a trusted one, or refused', (t) => {
  if (!needRoot(t)) return;
  const name = 'ckpt-test-tool';
  const { closed, open } = dirs(t, name);
  assert.equal(trustedTool(name, `${open}:${closed}`), realpathSync(join(closed, name)));
  assert.throws(
    () => trustedTool(name, `${open}:/usr/bin`),
    (err: Error & { code?: string }) => err.code === 'ECKPT_PERMISSION' && err.message.includes(`${open} is writable by other users`),
  );
  // A relative entry is wherever root happens to be (here: the closed directory, reached from our cwd).
  assert.throws(() => trustedTool(name, relative(process.cwd(), closed)), /relative PATH entry/);
  // Nowhere at all: the name, for the spawn to fail on as it would have.
  assert.equal(trustedTool('ckpt-no-such-tool', `${open}:${closed}`), 'ckpt-no-such-tool');
  assert.equal(trustedPath(`${open}:rel:${closed}:${join(closed, 'missing')}`), closed);
});

test('as root: a tool another user owns, in a closed directory, is refused', (t) => {
  if (!needRoot(t)) return;
  const name = 'ckpt-test-tool';
  const { closed } = dirs(t, name);
  chownSync(join(closed, name), testUser().uid, testUser().gid);
  assert.throws(() => trustedTool(name, closed), new RegExp(`belongs to uid ${testUser().uid}`));
});

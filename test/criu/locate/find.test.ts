// Which CRIU root runs (src/criu/locate/trusted.ts via find.ts): never one another
// user could replace — the binary, or a directory above it, theirs or writable by
// others. Fake CRIUs here are shell scripts that leave a mark if they ever run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { candidates, findCriu } from '../../../dist/criu/locate/find.js';
import { needRoot, tempDir, testUser } from '../../helpers.js';

/** A fake criu in `dir` that marks `mark` when run. */
function fakeCriu(dir: string, mark: string): string {
  const path = join(dir, 'criu');
  writeFileSync(path, `#!/bin/sh\ntouch ${mark}\necho "Version: 4.2"\n`, { mode: 0o755 });
  chmodSync(path, 0o755);
  return path;
}

test("as root, CKPT_CRIU in another user's directory, or in a directory others may write, is refused and never run", async (t) => {
  if (!needRoot(t)) return;
  const base = tempDir(t);
  chmodSync(base, 0o755);
  const mark = join(base, 'ran');
  const user = testUser();
  const theirs = join(base, 'theirs');
  mkdirSync(theirs, { mode: 0o755 });
  execFileSync('chown', [`${user.uid}:${user.gid}`, theirs]);
  const open = join(base, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  for (const [dir, why] of [[theirs, /belongs to uid \d+/], [open, /is writable by other users/]] as const) {
    const criu = fakeCriu(dir, mark);
    await assert.rejects(findCriu({ env: { CKPT_CRIU: criu }, cache: false }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ECKPT_PERMISSION');
      assert.match(err.message, why);
      return true;
    });
  }
  assert.ok(!existsSync(mark), 'no fake CRIU ran');
  // Root's own, closed to others (inside the sticky /tmp): it is run (and judged as CRIU).
  const ours = join(base, 'ours');
  mkdirSync(ours, { mode: 0o755 });
  await findCriu({ env: { CKPT_CRIU: fakeCriu(ours, mark) }, cache: false }).catch((err: Error & { code?: string }) => assert.notEqual(err.code, 'ECKPT_PERMISSION', err.message));
  assert.ok(existsSync(mark), "root's own was run");
  // Reached through a link of the user's (which they could re-point): run by its resolved path, never the link.
  const link = join(theirs, 'criu-link');
  symlinkSync(join(ours, 'criu'), link);
  execFileSync('chown', ['-h', `${user.uid}:${user.gid}`, link]);
  assert.deepEqual(candidates({ env: { CKPT_CRIU: link } }), [{ path: join(ours, 'criu'), source: 'env' }]);
});

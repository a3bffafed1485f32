// CRIU's dump options for a rank or a process: which of its sockets are external.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dumpOptions } from '../../../dist/crs/criu/options.js';
import type { ProcessRecord } from '../../../dist/store/manifest.js';

const record = (stdio: (string | null)[]): ProcessRecord =>
  ({ pid: 4242, tree: [4242], argv: ['x'], cwd: '/', env: {}, envWithheld: [], stdio, uid: 0, networkLock: 'skip', tcpEstablished: false }) as ProcessRecord;

test('every socket on stdio and the kept connection are external, whether /proc/net/unix lists them or not', () => {
  // These inodes belong to no socket here: the options must not depend on a listing that can miss one.
  const o = dumpOptions(record(['socket:[900000001]', 'pipe:[12]', 'socket:[900000002]']), '/nowhere', 'socket:[900000003]');
  assert.equal(o.extUnixSk, true);
  assert.deepEqual(o.external, ['unix[900000001]', 'unix[900000002]', 'unix[900000003]']);
});

test('one socket on two descriptors is named once; no socket, no external', () => {
  assert.deepEqual(dumpOptions(record(['socket:[7]', 'socket:[7]', null]), '/nowhere').external, ['unix[7]']);
  const none = dumpOptions(record(['/dev/null', 'pipe:[3]', 'pipe:[3]']), '/nowhere');
  assert.equal(none.extUnixSk, undefined);
  assert.equal(none.external, undefined);
});

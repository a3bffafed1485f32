// A node agent's probe of the shared store (src/agent/node-restore.ts): the token file
// the coordinator wrote is seen; a FIFO or a link to /dev/zero another user put under
// its name is not waited on, nor read without end — the store is just not seen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { probeStoreHere } from '../../dist/agent/node-restore.js';
import { tempDir } from '../helpers.js';

test('the store probe: the token is seen; a FIFO or a link to /dev/zero under its name is not', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'token'), 'abc123');
  assert.deepEqual(await probeStoreHere(join(dir, 'token'), 'abc123'), { seen: 'yes' });
  assert.equal((await probeStoreHere(join(dir, 'token'), 'other')).seen, 'no');
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  assert.equal((await probeStoreHere(join(dir, 'fifo'), 'abc123')).seen, 'no');
  symlinkSync('/dev/zero', join(dir, 'zero'));
  assert.equal((await probeStoreHere(join(dir, 'zero'), 'abc123')).seen, 'no');
});

// docs/ARCHITECTURE.md's layer diagram holds for the imports: scripts/check-layers.mjs
// reads every import in src/ and fails on one that goes up or sideways (the few known
// exceptions are listed there, to be removed, never added to).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { root } from './helpers.js';

test('the imports in src/ follow the layers of docs/ARCHITECTURE.md', () => {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'check-layers.mjs')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /imports follow the layers/);
});

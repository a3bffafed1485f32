// Removing by name through descriptors (src/util/remove-tree.ts): a link at the name or
// below it is removed, never followed; nothing there is not an error; removeOwnDir
// leaves anything at the name that is not this user's private directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeByName, removeOwnDir } from '../../dist/util/remove-tree.js';
import { tempDir } from '../helpers.js';

test('removeByName: the tree goes; a link at the name or below it goes, its target stays; a missing name is false', (t) => {
  const base = tempDir(t);
  const outside = tempDir(t);
  writeFileSync(join(outside, 'keep'), 'keep');
  mkdirSync(join(base, 'tree', 'a', 'b'), { recursive: true });
  writeFileSync(join(base, 'tree', 'a', 'b', 'file'), 'x');
  symlinkSync(outside, join(base, 'tree', 'a', 'link'));
  symlinkSync(outside, join(base, 'link'));

  assert.equal(removeByName(join(base, 'tree')), true);
  assert.equal(existsSync(join(base, 'tree')), false);
  assert.equal(removeByName(join(base, 'link')), true);
  assert.throws(() => lstatSync(join(base, 'link')), /ENOENT/);
  assert.equal(readFileSync(join(outside, 'keep'), 'utf8'), 'keep');
  assert.equal(removeByName(join(base, 'missing')), false);
  assert.equal(removeByName(join(base, 'missing', 'below')), false);
});

test('removeOwnDir: only a private directory of this user; one others may enter, a file or a link is left', (t) => {
  const base = tempDir(t);
  mkdirSync(join(base, 'private'), { mode: 0o700 });
  writeFileSync(join(base, 'private', 'f'), '');
  mkdirSync(join(base, 'open'), { mode: 0o755 });
  writeFileSync(join(base, 'file'), '');
  symlinkSync(join(base, 'private'), join(base, 'link'));

  assert.equal(removeOwnDir(join(base, 'open')), false);
  assert.equal(removeOwnDir(join(base, 'file')), false);
  assert.equal(removeOwnDir(join(base, 'link')), false);
  assert.ok(existsSync(join(base, 'open')) && existsSync(join(base, 'file')) && lstatSync(join(base, 'link')).isSymbolicLink());
  assert.equal(removeOwnDir(join(base, 'private')), true);
  assert.equal(existsSync(join(base, 'private')), false);
});

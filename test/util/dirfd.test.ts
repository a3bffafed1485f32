// Reading a snapshot's files through its directory's descriptor (src/util/dirfd.ts):
// openFileBelow follows no link at any level and never blocks on a FIFO — what a
// snapshot's owner could swap in between the layout check and the checksum read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DirFd, openFileBelow } from '../../dist/util/dirfd.js';
import { tempDir } from '../helpers.js';

test('openFileBelow: a regular file below; a link at any level, or a FIFO, refused at once', (t) => {
  const base = tempDir(t);
  const outside = tempDir(t);
  mkdirSync(join(base, 'images'));
  writeFileSync(join(base, 'images', 'pages.img'), 'pages');
  writeFileSync(join(outside, 'secret'), 'root only');
  execFileSync('mkfifo', [join(outside, 'fifo')]);
  symlinkSync(outside, join(base, 'swapped'));
  symlinkSync(join(outside, 'secret'), join(base, 'images', 'link.img'));
  execFileSync('mkfifo', [join(base, 'images', 'fifo.img')]);
  const dir = DirFd.open(base);
  try {
    const ok = openFileBelow(dir.at(), 'images/pages.img');
    assert.equal(readFileSync(ok.fd, 'utf8'), 'pages');
    closeSync(ok.fd);
    for (const [rel, code] of [['swapped/secret', /ELOOP|ENOTDIR/], ['swapped/fifo', /ELOOP|ENOTDIR/], ['images/link.img', /ELOOP/], ['images/fifo.img', /EINVAL/]] as const) {
      assert.throws(() => openFileBelow(dir.at(), rel), (err: NodeJS.ErrnoException) => code.test(err.code ?? ''), rel);
    }
  } finally {
    dir.close();
  }
});

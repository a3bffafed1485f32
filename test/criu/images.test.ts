// CRIU's image files as ckpt reads them (src/criu/images.ts): the processes of a
// dump from pstree.img — written here byte by byte, as CRIU lays them out (a real
// dump's: test/process/resources.test.ts). Anything malformed reads as nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dumpedPids } from '../../dist/criu/images.js';
import { tempDir } from '../helpers.js';

const COMMON = 0x54564319;
const PSTREE = 0x50273030;

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    out.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return out;
}

/** A PstreeEntry: pid (1), ppid (2), pgid (3), sid (4), as varints. */
function entry(pid: number, ppid: number): number[] {
  return [0x08, ...varint(pid), 0x10, ...varint(ppid), 0x18, ...varint(pid), 0x20, ...varint(pid)];
}

function image(entries: number[][], cut = 0): Buffer {
  const parts = [Buffer.alloc(8)];
  parts[0]!.writeUInt32LE(COMMON, 0);
  parts[0]!.writeUInt32LE(PSTREE, 4);
  for (const e of entries) {
    const size = Buffer.alloc(4);
    size.writeUInt32LE(e.length, 0);
    parts.push(size, Buffer.from(e));
  }
  const whole = Buffer.concat(parts);
  return whole.subarray(0, whole.length - cut);
}

function imagesDir(t: Parameters<typeof tempDir>[0], bytes: Buffer): string {
  const dir = join(tempDir(t), 'images');
  mkdirSync(dir);
  writeFileSync(join(dir, 'pstree.img'), bytes);
  return dir;
}

test('pstree.img: the pids of every entry, the root first', (t) => {
  assert.deepEqual(dumpedPids(imagesDir(t, image([entry(4242, 1), entry(70000, 4242), entry(4243, 4242)]))), [4242, 70000, 4243]);
});

test('pstree.img missing, empty, cut short, without a pid or with a pid of the wrong wire type: nothing', (t) => {
  assert.equal(dumpedPids(join(tempDir(t), 'none')), undefined);
  assert.equal(dumpedPids(imagesDir(t, image([]))), undefined);
  assert.equal(dumpedPids(imagesDir(t, image([entry(4242, 1), entry(4243, 4242)], 3))), undefined);
  assert.equal(dumpedPids(imagesDir(t, image([[0x10, 0x01]]))), undefined);
  assert.equal(dumpedPids(imagesDir(t, image([[0x0a, 0x01, 0x05]]))), undefined);
  assert.equal(dumpedPids(imagesDir(t, image([[0x08, 0x00]]))), undefined);
  // An entry whose size runs past the end of the file.
  const bad = image([entry(4242, 1)]);
  bad.writeUInt32LE(1000, 8);
  assert.equal(dumpedPids(imagesDir(t, bad)), undefined);
});

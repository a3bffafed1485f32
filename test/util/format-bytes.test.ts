// Sizes for people never read 0 when they are not, and keep three significant digits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, formatDuration, formatRate } from '../../dist/util/format-bytes.js';

test('formatBytes: bytes as bytes, then decimal units with three significant digits', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1), '1 B');
  assert.equal(formatBytes(218), '218 B');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1000), '1.00 kB');
  assert.equal(formatBytes(1500), '1.50 kB');
  assert.equal(formatBytes(31_600_873), '31.6 MB');
  assert.equal(formatBytes(412_000_000), '412 MB');
  assert.equal(formatBytes(999_999_999), '1.00 GB');
  assert.equal(formatBytes(1_073_741_824), '1.07 GB');
  assert.equal(formatBytes(-1), '? B');
});

test('formatRate and formatDuration', () => {
  assert.equal(formatRate(420_000_000), '420 MB/s');
  assert.equal(formatDuration(850), '850 ms');
  assert.equal(formatDuration(2300), '2.3 s');
  assert.equal(formatDuration(65_000), '1 min 5 s');
});

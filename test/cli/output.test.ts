// What the CLI prints (src/cli/output.ts): text that comes from files another user may
// have written — a manifest's command line, working directory, host — reaches the
// terminal with its control characters escaped: no escape sequence retitles or clears
// it, no newline inside a field forges a line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ckpt, tempDir } from '../helpers.js';
import { draft, snapshotIn } from '../helpers/snapshots.js';
import { printable } from '../../dist/cli/output.js';

const HOSTILE = 'x\x1b]0;PWNED\x07\x1b[2J\nforged line\r\x9b';

test('printable: control characters written as \\xNN, the rest as it is', () => {
  assert.equal(printable(HOSTILE), 'x\\x1b]0;PWNED\\x07\\x1b[2J\\x0aforged line\\x0d\\x9b');
  assert.equal(printable('tab\tand ünïcode'), 'tab\tand ünïcode');
});

test('snapshots ls and inspect show a hostile manifest escaped', async (t) => {
  const base = tempDir(t);
  const m = draft(['/bin/echo', HOSTILE], `/tmp/${HOSTILE}`);
  m.host = HOSTILE;
  const store = await snapshotIn(base, m);
  for (const args of [['snapshots', 'ls', store], ['snapshots', 'inspect', join(store, '000001')]]) {
    const r = await ckpt(args);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /[\x1b\x07\r\x9b]/, `${args[1]}: ${JSON.stringify(r.stdout)}`);
    assert.ok(!r.stdout.split('\n').some((l) => l.startsWith('forged line')), `${args[1]}: a line was forged`);
    assert.match(r.stdout, /\\x1b\]0;PWNED\\x07/);
  }
});

// Descriptors a process was started with: found (no close-on-exec), and replaced by
// /dev/null in what a child of another user would get.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const module = fileURLToPath(new URL('../../dist/util/inherited-fds.js', import.meta.url));

test('a descriptor a process was started with is found; its own (close-on-exec) are not; a shielded child gets /dev/null there', () => {
  const fd = openSync('/etc/hostname', 'r');
  try {
    const script = `
      const { inheritedFds, shieldStdio } = await import(${JSON.stringify(module)});
      const { openSync, readlinkSync } = await import('node:fs');
      const { spawnSync } = await import('node:child_process');
      const own = openSync('/etc/hostname', 'r');
      const devNull = openSync('/dev/null', 'r');
      const stdio = shieldStdio(['ignore', 'pipe', 'ignore'], devNull);
      const child = spawnSync('/bin/sh', ['-c', 'readlink /proc/self/fd/200'], { stdio, encoding: 'utf8' });
      console.log(JSON.stringify({ fds: inheritedFds(), own, at200: stdio[200] === devNull, child: child.stdout.trim(), me: readlinkSync('/proc/self/fd/200') }));`;
    // (Node marks descriptors up to about 20 close-on-exec at its start: 200 stays as it came.)
    const stdio: ('ignore' | 'pipe' | 'inherit' | number)[] = ['ignore', 'pipe', 'inherit', ...Array<'ignore'>(197).fill('ignore'), fd];
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { stdio, encoding: 'utf8' }));
    // Whatever else this test runner was started with is listed too.
    assert.ok(out.fds.includes(200), JSON.stringify(out.fds));
    assert.ok(!out.fds.includes(out.own));
    assert.equal(out.at200, true);
    assert.equal(out.me, '/etc/hostname');
    assert.equal(out.child, '/dev/null');
  } finally {
    closeSync(fd);
  }
});

// Facts read from /proc: small files go through one reused buffer, and a file longer
// than it (a command line of 40 000 bytes) is still read whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cmdline, processTree, readStat } from '../../dist/util/procfs.js';

test('a child: in its parent’s tree, its stat and its whole command line, however long', async (t) => {
  const long = 'x'.repeat(40_000);
  const script = 'process.stdout.write("up"); setInterval(() => {}, 1 << 30)';
  const child = spawn(process.execPath, ['-e', script, long], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => child.kill('SIGKILL'));
  // It runs its own code: past the exec, /proc shows its command line.
  await once(child.stdout!, 'data');
  const pid = child.pid!;
  assert.ok(processTree(process.pid).includes(pid), 'the child is in our tree');
  assert.deepEqual(processTree(pid), [pid]);
  const st = readStat(pid);
  assert.equal(st?.pid, pid);
  assert.equal(st?.ppid, process.pid);
  assert.deepEqual(cmdline(pid), [process.execPath, '-e', script, long]);
  child.kill('SIGKILL');
  await once(child, 'exit');
  assert.equal(readStat(pid), undefined, 'gone: no stat');
  assert.deepEqual(cmdline(pid), []);
});

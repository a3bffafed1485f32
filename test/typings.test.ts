// The published typings (dist/types, built with stripInternal) hold what users may
// call: Comm's internals (the checkpoint agent, the mailbox, raw sends) are not there.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const typings = (path: string) => readFileSync(fileURLToPath(new URL(`../dist/types/${path}`, import.meta.url)), 'utf8');

test("Comm's published typings show only its public API", () => {
  const text = typings('rank/comm.d.ts');
  // A member declaration of the class: `    name(`, `    readonly name:` …
  const member = (name: string) => new RegExp(`^\\s+(?:readonly\\s+)?${name}\\s*[(:<?]`, 'm');
  for (const name of ['send', 'recv', 'recvMessage', 'barrier', 'bcast', 'allreduce', 'gather', 'safePoint', 'checkpoint', 'finalize', 'abort', 'stats']) {
    assert.match(text, member(name), `${name} is public`);
  }
  for (const name of ['agent', 'mailbox', 'sendRaw', 'recvRaw', 'claimBody', 'deliver', 'peerGone', 'captureState', 'restoreState', 'attachCoordinator']) {
    assert.doesNotMatch(text, member(name), `${name} is internal`);
  }
  assert.doesNotMatch(text, /constructor\(/, 'a Comm comes from init()');
});

test('package.json points its typings at the published ones', () => {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8'));
  assert.equal(pkg.exports['./rank'].types, './dist/types/rank/index.d.ts');
  assert.equal(pkg.exports['.'].types, './dist/types/index.d.ts');
  assert.match(typings('rank/index.d.ts'), /init/);
});

// Bad input an audit of the CLI found taken, each now one usage line (exit 2, nothing on
// stdout) before anything starts: numbers past what a timer or a pid can hold (an
// --interval that overflowed Node's timer checkpointed without pause), job names that
// are not one path name, an empty job reference (a prefix of every id), malformed
// CKPT_* variables the ranks would read, paths over the system's limits, a store or an
// output named that is not what it must be, a subcommand's help named wrong.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ckpt, privateStateDir, tempDir, type Result } from '../helpers.js';
import { draft, snapshotIn } from '../helpers/snapshots.js';

before(() => privateStateDir());

function assertUsage(what: string, r: Result, re: RegExp): void {
  const seen = `${what}: ${JSON.stringify(r.stderr)}`;
  assert.equal(r.code, 2, seen);
  assert.equal(r.stdout, '', seen);
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, seen);
  assert.match(lines[0]!, /^ckpt( [a-z]+){0,2}: .* \[ECKPT_USAGE\]$/, seen);
  assert.match(lines[0]!, re, seen);
}

test('numbers past a timer or a pid, bad names, an empty job reference, malformed CKPT_* variables: one usage line, nothing started', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'a-file');
  writeFileSync(file, '');
  const marker = join(dir, 'ran');
  const touch = ['/bin/sh', '-c', `echo ran >> ${marker}`];
  const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
    [['run', '-n', '1', '--interval', '99999999999999', '--', ...touch], {}, /--interval takes at most 2147483 seconds/],
    [['run', '-n', '1', '--interval', '2147484', '--', ...touch], {}, /at most 2147483/],
    [['run', '-n', '1', '--timeout', '99999999999999', '--', ...touch], {}, /--timeout takes at most/],
    [['run', '-n', '1', '--join-timeout', '9007199254740993', '--', ...touch], {}, /--join-timeout takes at most/],
    [['checkpoint', '--pid', '12345', '--dir', dir, '--interval', '99999999999999'], {}, /--interval takes at most/],
    [['checkpoint', '--pid', '99999999999', '--dir', dir], {}, /--pid takes a process id \(at most 4194304\)/],
    [['run', '-n', '1', '--name', '../../escaped', '--', ...touch], {}, /not one path name/],
    [['run', '-n', '1', '--name', '', '--', ...touch], {}, /the name is empty/],
    [['run', '-n', '1', '--name', 'two\nlines', '--', ...touch], {}, /control character/],
    [['run', '--isolate', '--name', '..', '--', ...touch], {}, /not one path name/],
    [['kill', ''], {}, /not an empty string/],
    [['checkpoint', ''], {}, /not an empty string/],
    [['resume', ''], {}, /not an empty string/],
    [['run', '-n', '1', '--', ...touch], { CKPT_TIMEOUT_MS: 'abc' }, /CKPT_TIMEOUT_MS must be a whole number of milliseconds from 0 to 2147483647, not 'abc'/],
    [['run', '-n', '1', '--', ...touch], { CKPT_TIMEOUT_MS: '99999999999' }, /CKPT_TIMEOUT_MS .* not '99999999999'/],
    [['run', '-n', '1', '--dir', file, '--', ...touch], {}, /--dir: .* is not a directory/],
    [['run', '-n', '1', '--resume', '--dir', file, '--', ...touch], {}, /--dir: .* is not a directory/],
    [['snapshots', 'ls', `/tmp/${'a'.repeat(5000)}`], {}, /a path given is too long/],
    [['snapshots', 'ls', dir, '--frob'], {}, /see 'ckpt snapshots ls --help'/],
    [['setup', 'criu', '--frob'], {}, /see 'ckpt setup criu --help'/],
  ];
  for (const [args, env, re] of cases) assertUsage(`ckpt ${JSON.stringify(args)}`, await ckpt(args, env, 60_000), re);
  assert.equal(existsSync(marker), false, 'no command ran');
});

test('restart: --log with --stdout, or a directory as an output file: one usage line before anything is restored', async (t) => {
  const base = tempDir(t);
  const marker = join(base, 'ran');
  const store = await snapshotIn(base, draft(['/bin/sh', '-c', `echo ran >> ${marker}`], base));
  const outDir = join(base, 'out');
  mkdirSync(outDir);
  for (const [args, re] of [
    [['--log', join(base, 'log'), '--stdout', join(base, 'o')], /--log takes both outputs: it goes without --stdout/],
    [['--log', outDir, '--detach'], /--log: .* is a directory/],
    [['--stdout', outDir], /--stdout: .* is a directory/],
  ] as [string[], RegExp][]) {
    assertUsage(`restart ${args.join(' ')}`, await ckpt(['restart', store, ...args], {}, 60_000), re);
  }
  assert.equal(existsSync(marker), false, 'nothing was restarted');
});

test('snapshots rm --force: a snapshot whose manifest is damaged goes by its number; without --force it is refused; nothing else goes', async (t) => {
  const base = tempDir(t);
  const store = await snapshotIn(base, draft(['/bin/true'], base));
  const other = await snapshotIn(base, draft(['/bin/true'], base));
  const seqDir = join(store, '000001');
  writeFileSync(join(seqDir, 'manifest.json'), '{"truncated');
  const refused = await ckpt(['snapshots', 'rm', seqDir], {}, 60_000);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /\[ECKPT_SNAPSHOT_FORMAT\]$/m);
  assert.ok(existsSync(seqDir), 'refused: still there');
  const usage = await ckpt(['snapshots', 'rm', store, '--force'], {}, 60_000);
  assert.equal(usage.code, 2, usage.stderr);
  assert.match(usage.stderr, /name the damaged snapshot: its directory, or the store with --seq N/);
  const r = await ckpt(['snapshots', 'rm', store, '--seq', '1', '--force', '--json'], {}, 60_000);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { ok: true, snapshot: seqDir, seq: 1, lockTable: null });
  assert.equal(existsSync(seqDir), false);
  assert.ok(existsSync(join(other, '000001', 'manifest.json')), 'the other store is untouched');
});

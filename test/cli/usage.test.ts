// Every command's and subcommand's usage errors and --help, through the real bin/ckpt:
// a mistake exits 2 with exactly one line on stderr and nothing on stdout, with "did you
// mean" where there is something to mean; --help exits 0 and lists every option of the table.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ckpt, privateStateDir, tempDir, type Result } from '../helpers.js';
import { specs, type CommandSpec } from '../../dist/cli/spec/index.js';

before(() => privateStateDir());

/** Every table with the words that lead to it. */
const leaves: { words: string[]; spec: CommandSpec }[] = specs.flatMap((s) =>
  s.subcommands ? s.subcommands.map((sub) => ({ words: [s.name, sub.name], spec: sub })) : [{ words: [s.name], spec: s }],
);

/** Runs many ckpt lines, a few at a time. */
async function all(lines: string[][]): Promise<Result[]> {
  const out: Result[] = [];
  for (let i = 0; i < lines.length; i += 6) out.push(...(await Promise.all(lines.slice(i, i + 6).map((l) => ckpt(l, {}, 60_000)))));
  return out;
}

function assertUsage(args: string[], r: Result, re?: RegExp): void {
  const what = `ckpt ${args.join(' ')}: ${JSON.stringify(r.stderr)}`;
  assert.equal(r.code, 2, what);
  assert.equal(r.stdout, '', what);
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, what);
  assert.match(lines[0]!, /^ckpt( [a-z]+){0,2}: .* \[ECKPT_USAGE\]$/, what);
  assert.doesNotMatch(lines[0]!, / \| |usage: /, `no glued usages: ${what}`);
  assert.equal((lines[0]!.match(/'/g) ?? []).length % 2, 0, `quotes closed: ${what}`);
  if (re) assert.match(lines[0]!, re, what);
}

test('--help of every command and subcommand, anywhere on the line, and ckpt help CMD [SUB]: exit 0', async () => {
  const lines: string[][] = [];
  // Among other words (ckpt run: among options; its first word is the command to run).
  for (const { words, spec } of leaves) lines.push([...words, spec.commandAfter ? '-v' : 'word', '--help'], ['help', ...words]);
  lines.push(['run', '-n', '2', '--help'], ['snapshots', '--help'], ['setup', '--help'], ['run', '-n', '1', '--', 'printf', '%s\n', '--help']);
  const results = await all(lines);
  for (let i = 0; i < leaves.length; i++) {
    const { words, spec } = leaves[i]!;
    const [late, viaHelp] = results.slice(2 * i, 2 * i + 2) as [Result, Result];
    assert.equal(late.code, 0, `${words.join(' ')} … --help: ${late.stderr}`);
    assert.equal(late.stderr, '');
    assert.match(late.stdout, new RegExp(`^usage: ckpt ${words.join(' ')} `));
    for (const name of Object.keys(spec.options)) assert.ok(late.stdout.includes(`--${name}`), `${words.join(' ')} --help lists --${name}`);
    assert.equal(viaHelp.code, 0);
    assert.equal(viaHelp.stdout, late.stdout, `ckpt help ${words.join(' ')} is the same`);
  }
  const [run, snapshots, setup, after] = results.slice(2 * leaves.length) as Result[];
  assert.equal(run!.code, 0);
  assert.match(run!.stdout, /--join-timeout SEC/);
  assert.match(run!.stdout, /--timeout SEC .*\(default: 600\)/);
  assert.match(snapshots!.stdout, /subcommands:\n {2}ls /);
  assert.match(setup!.stdout, /criu/);
  // A --help of the command ckpt runs is the command's.
  assert.equal(after!.code, 0, after!.stderr);
  assert.match(after!.stdout, /^\[0\] --help$/m);
});

test('bare ckpt: the help on stderr, exit 2; ckpt --help: stdout, exit 0; --version', async () => {
  const [bare, help, version] = await all([[], ['--help'], ['--version']]);
  assert.equal(bare!.code, 2);
  assert.equal(bare!.stdout, '');
  assert.match(bare!.stderr, /^usage: ckpt COMMAND/);
  assert.equal(help!.code, 0);
  assert.equal(help!.stdout, bare!.stderr);
  for (const s of specs) assert.match(help!.stdout, new RegExp(`\\n {2}${s.name} `));
  assert.match(help!.stdout, /85 .*preemption/);
  assert.match(version!.stdout, /^ckpt \d+\.\d+\.\d+/);
});

test('every command and subcommand: an unknown option, a missing value, a bad value', async () => {
  const cases: { args: string[]; re: RegExp }[] = [];
  for (const { words, spec } of leaves) {
    cases.push({ args: [...words, '--frobnicate'], re: /unknown option '--frobnicate' \(see 'ckpt [a-z ]+ --help'\)/ });
    const withValue = Object.entries(spec.options).find(([, o]) => o.arg);
    if (withValue) cases.push({ args: [...words, `--${withValue[0]}`], re: new RegExp(`--${withValue[0]} needs a value`) });
    const checked = Object.entries(spec.options).find(([, o]) => o.int || o.values);
    if (checked) cases.push({ args: [...words, `--${checked[0]}`, '-7'], re: new RegExp(`--${checked[0]} (takes|is) `) });
  }
  const results = await all(cases.map((c) => c.args));
  cases.forEach((c, i) => assertUsage(c.args, results[i]!, c.re));
});

test('missing or extra operands, unknown commands and subcommands: one line each', async () => {
  const cases: [string[], RegExp][] = [
    [['checkpoint'], /say which process with --pid PID/],
    [['checkpoint', '--pid', '123'], /say where with --dir DIR/],
    [['checkpoint', '--pid', '123', '--dir', 'x', 'extra'], /unexpected argument 'extra'/],
    [['restart'], /name the snapshot/],
    [['restart', 'a', 'b'], /name one snapshot, not 2/],
    [['resume'], /name the pid or the job/],
    [['kill'], /name the job/],
    [['ps', 'extra'], /unexpected argument 'extra'/],
    [['doctor', 'extra'], /unexpected argument 'extra'/],
    [['setup'], /say which: criu/],
    [['setup', 'crui'], /unknown subcommand 'crui' \(did you mean 'criu'\?\)/],
    [['setup', 'criu', 'extra'], /unexpected argument 'extra'/],
    [['snapshots'], /say which: ls, inspect, verify, rm, gc/],
    [['snapshots', 'lst', 'x'], /unknown subcommand 'lst' \(did you mean 'ls'\?\)/],
    [['completion'], /say which shell/],
    [['completion', 'fish'], /no completion for 'fish'/],
    [['help', 'nosuch'], /unknown command 'nosuch'/],
    [['help', 'snapshots', 'nosuch'], /unknown subcommand 'nosuch'/],
    [['run'], /say how many ranks with -n N/],
    [['run', '-n', '2'], /no command to run/],
    [['run', '--isolate'], /no command to run/],
    [['chekpoint'], /unknown command 'chekpoint' \(did you mean 'checkpoint'\?\)/],
    [['dump'], /unknown command 'dump' \(did you mean 'checkpoint'\?\)/],
  ];
  for (const { words, spec } of leaves) if (spec.operands?.length) cases.push([words, /^ckpt [a-z ]+: (name|say)/]);
  const results = await all(cases.map((c) => c[0]));
  cases.forEach(([args, re], i) => assertUsage(args, results[i]!, re));
});

test("other tools' habits lead to ckpt's options; options named as written", async () => {
  const cases: [string[], RegExp][] = [
    // CRIU: -t PID -D DIR.
    [['checkpoint', '-t', '1234', '-D', 'x'], /^ckpt checkpoint: unknown option '-t' \(did you mean '--pid'\?\)/],
    [['checkpoint', '--pid', '1234', '-D', 'x'], /unknown option '-D' \(did you mean '--dir'\?\)/],
    // ompi-checkpoint PID: a number where a job is expected.
    [['checkpoint', '7858'], /no running job '7858' \(a process\? ckpt checkpoint --pid 7858 --dir DIR\)/],
    // DMTCP: -i SEC.
    [['run', '-i', '5', '-n', '2', 'true'], /unknown option '-i' \(did you mean '--interval'\?\)/],
    [['run', '-n', '2', '--isolate', 'true'], /^ckpt run: -n does not go with --isolate/],
    [['run', '--np', '2', '--isolate', 'true'], /^ckpt run: --np does not go with --isolate/],
    [['run', '-np', 'x', 'true'], /--np takes a whole number/],
    [['checkpoint', '--pid', '-1', '--dir', 'x'], /--pid takes a process id \(a whole number\), not '-1'/],
    [['checkpoint', '--pid=abc', '--dir', 'x'], /--pid takes a process id/],
    [['checkpoint', '--pid', '--stop'], /--pid needs a value/],
    [['kill', 'somejob', '--signal', 'FOO'], /unknown signal 'FOO'|no running job/],
    [['resume', 'abc'], /neither a pid nor a running job/],
    [['restart', '-D', 'x'], /the snapshot is named without an option/],
  ];
  const results = await all(cases.map((c) => c[0]));
  cases.forEach(([args, re], i) => assertUsage(args, results[i]!, re));
});

test('a pid that is ckpt itself and pid 1 are refused with the true reason, not as a signal', async () => {
  const [one] = await all([['checkpoint', '--pid', '1', '--dir', '/nonexistent/store', '--leave-running']]);
  assert.equal(one!.code, 1);
  assert.match(one!.stderr, /^ckpt: refusing to checkpoint pid 1: it is init, and a dump freezes the whole tree below it \[ECKPT_UNSAFE_PID\]\n$/);
  assert.doesNotMatch(one!.stderr, /signal/);
  // Its parent (this test): a usage error, exit 2.
  const [parent] = await all([['checkpoint', '--pid', String(process.pid), '--dir', '/nonexistent/store']]);
  assertUsage([], parent!, /ckpt itself or one of its parents/);
});

test('--stage DIR: relative, missing, not a directory, open to other users, with --isolate: one line each, exit 2, nothing started', async (t) => {
  const dir = tempDir(t);
  const open = join(dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o1777);
  writeFileSync(join(dir, 'file'), '');
  const run = (stage: string) => ['run', '-n', '2', '--launcher', 'local', '--crs', 'self', '--stage', stage, '--', process.execPath, '-e', ''];
  const cases: [string[], RegExp][] = [
    [run('stage'), /--stage: 'stage' is not an absolute path/],
    [run(join(dir, 'nosuch')), /--stage: .*nosuch: no such directory/],
    [run(join(dir, 'file')), /--stage: .*file is not a directory/],
    [['run', '--isolate', '--stage', dir, '--', 'true'], /--stage goes with a job of ranks/],
  ];
  cases.push([run(open), /--stage: .*open is writable by other users \(mode 1777\)/]);
  const results = await all(cases.map((c) => c[0]));
  cases.forEach(([args, re], i) => assertUsage(args, results[i]!, re));
});

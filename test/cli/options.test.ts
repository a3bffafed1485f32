// Every option of every table, through main() in this process (thousands of cases;
// test/cli/usage.test.ts runs the real bin/ckpt for each command): each mistake is one
// line naming the option as written, exit 2; --help lists every option.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { main } from '../../dist/cli/main.js';
import { specs, type CommandSpec } from '../../dist/cli/spec/index.js';
import { distance, nearest } from '../../dist/cli/suggest.js';

const leaves: { words: string[]; spec: CommandSpec }[] = specs.flatMap((s) =>
  s.subcommands ? s.subcommands.map((sub) => ({ words: [s.name, sub.name], spec: sub })) : [{ words: [s.name], spec: s }],
);

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } });
  return { code, stdout, stderr };
}

async function usage(argv: string[], re: RegExp): Promise<void> {
  const r = await run(argv);
  const what = `ckpt ${argv.join(' ')}: ${JSON.stringify(r.stderr)}`;
  assert.equal(r.code, 2, what);
  assert.equal(r.stdout, '', what);
  assert.match(r.stderr, /^ckpt( [a-z]+){1,2}: [^\n]* \[ECKPT_USAGE\]\n$/, what);
  assert.match(r.stderr, re, what);
}

test('each option: a near miss, a missing value, a value given to a flag, a bad number or word', async () => {
  let n = 0;
  for (const { words, spec } of leaves) {
    for (const [name, o] of Object.entries(spec.options)) {
      await usage([...words, `--${name}x`], new RegExp(`unknown option '--${name}x' \\(did you mean '--${name}'\\?\\)`));
      if (o.arg) {
        await usage([...words, `--${name}`], new RegExp(`: --${name} needs a value: --${name} `));
        // An option where its value should be: the value is missing, not the option taken as it.
        await usage([...words, `--${name}`, '--frobnicate'], new RegExp(`: --${name} needs a value`));
      } else await usage([...words, `--${name}=yes`], new RegExp(`: --${name} takes no value`));
      if (o.short && o.arg) await usage([...words, `-${o.short}`], new RegExp(`: -${o.short} needs a value`));
      if (o.int === 'pid') await usage([...words, `--${name}`, '-1'], new RegExp(`--${name} takes a process id`));
      else if (o.int) await usage([...words, `--${name}=ten`], new RegExp(`--${name} takes a whole number`));
      if (o.short && o.int && o.int !== 'pid') await usage([...words, `-${o.short}`, 'ten'], new RegExp(`: -${o.short} takes a whole number`));
      if (o.values) await usage([...words, `--${name}`, 'bogus'], new RegExp(`--${name} is .*not 'bogus'`));
      n++;
    }
  }
  assert.ok(n > 60, `${n} options walked`);
});

test('each --help lists every option of its table, with its short form and value', async () => {
  for (const { words, spec } of leaves) {
    const r = await run([...words, '--help']);
    assert.equal(r.code, 0);
    for (const [name, o] of Object.entries(spec.options)) {
      const label = `${o.short ? `-${o.short}, ` : ''}--${name}${o.arg ? ` ${o.arg}` : ''}`;
      assert.ok(r.stdout.includes(label), `${words.join(' ')} --help: ${label}`);
      assert.ok(r.stdout.includes(o.help), `and its meaning`);
    }
  }
});

test('did you mean: slips and swaps, not strangers', () => {
  assert.equal(distance('crui', 'criu'), 1);
  assert.equal(nearest('--leave-runing', ['--leave-running', '--stop']), '--leave-running');
  assert.equal(nearest('--leave', ['--leave-running', '--stop']), '--leave-running', 'a unique prefix');
  assert.equal(nearest('--frobnicate', ['--pid', '--dir', '--json']), undefined);
  assert.equal(nearest('-pid', ['--pid', '--dir']), '--pid', 'one dash');
});

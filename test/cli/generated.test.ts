// What the option tables generate besides --help: the committed man page is current,
// the completion scripts are valid shell, and help, completion and --version load
// no command's implementation (main.ts imports one only to run it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ckpt, root } from '../helpers.js';
import { specs, EXIT_STATUSES } from '../../dist/cli/spec/index.js';
import { EXIT_CHECKPOINTED } from '../../dist/registry/jobs.js';

test('man/ckpt.1 is generated from the current tables (node scripts/gen-man.mjs)', () => {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'gen-man.mjs'), '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const page = readFileSync(join(root, 'man', 'ckpt.1'), 'utf8');
  for (const s of specs) assert.ok(page.includes(`.SS ckpt ${s.name}`), s.name);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { man: string[]; files: string[] };
  assert.deepEqual(pkg.man, ['man/ckpt.1']);
  assert.ok(pkg.files.includes('man'));
});

test('the exit statuses: 85 is EXIT_CHECKPOINTED; the README has the same table', () => {
  assert.ok(EXIT_STATUSES.some((e) => e.status === String(EXIT_CHECKPOINTED)));
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  for (const e of EXIT_STATUSES) assert.match(readme, new RegExp(`\\n\\| ${e.status.replace('+', '\\+')} \\| `), e.status);
});

test('ckpt completion bash|zsh: valid scripts that know every command, subcommand and option', async (t) => {
  const bash = await ckpt(['completion', 'bash']);
  assert.equal(bash.code, 0, bash.stderr);
  const check = spawnSync('bash', ['-n'], { input: bash.stdout, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
  for (const s of specs) {
    assert.ok(bash.stdout.includes(s.name), s.name);
    for (const sub of s.subcommands ?? []) for (const o of Object.keys(sub.options)) assert.ok(bash.stdout.includes(`--${o}`));
    for (const o of Object.keys(s.options)) assert.ok(bash.stdout.includes(`--${o}`), `--${o}`);
  }
  // Completing `ckpt checkpoint --le` in bash itself.
  const words = 'ckpt checkpoint --le';
  const probe = `${bash.stdout}\nCOMP_WORDS=(${words}); COMP_CWORD=2; _ckpt; echo "\${COMPREPLY[@]}"`;
  const done = spawnSync('bash', ['-c', probe], { encoding: 'utf8' });
  assert.equal(done.stdout.trim(), '--leave-running', done.stderr);
  const zsh = await ckpt(['completion', 'zsh']);
  assert.equal(zsh.code, 0, zsh.stderr);
  assert.match(zsh.stdout, /^#compdef ckpt\n/);
  const hasZsh = spawnSync('zsh', ['-c', 'true']).status === 0;
  if (!hasZsh) return t.diagnostic('zsh is not installed: its script is not parsed');
  const z = spawnSync('zsh', ['-n'], { input: zsh.stdout, encoding: 'utf8' });
  assert.equal(z.status, 0, z.stderr);
});

/** The relative modules a module imports statically, transitively. */
function staticImports(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+'(\.[^']+)'/gms)) staticImports(resolve(dirname(file), m[1]!), seen);
  return seen;
}

test('help, completion and --version load no command: main.ts imports them only to run them', () => {
  const loaded = [...staticImports(join(root, 'dist', 'cli', 'main.js'))].map((f) => f.slice(join(root, 'dist').length + 1));
  const heavy = loaded.filter((f) => /^cli\/commands\/|^(process|runtime|isolate|control|crs|criu|store|registry|rank|agent|wire)\//.test(f));
  assert.deepEqual(heavy, [], `statically loaded: ${loaded.join(' ')}`);
  assert.ok(loaded.includes('cli/spec/index.js'));
});

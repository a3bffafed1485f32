// The README's code runs as written. Every ```js, ```ts and ```sh block — unless the
// line before it is `<!-- not run -->` — is run in order in one scratch directory
// (a block may use what an earlier one left, as a reader would), against this
// package: `ckpt` and `ckpt/rank` resolve to it through its exports, and `ckpt` on
// PATH is its bin/ckpt. A JS block is saved as example.mjs (a TS block as
// example.mts, compiled to example.mjs) and first type-checked by tsc --strict with
// unused names refused; `<!-- run: COMMAND -->` before it says how it runs (default
// `node example.mjs`), COMMAND exiting 0. An sh block runs under bash -e -o pipefail.
// Also: `npm run demo` into a pipe writes no terminal escapes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ckptBin, needCriu, root, tempDir } from './helpers.js';

const run = promisify(execFile);

interface Block {
  lang: 'js' | 'ts' | 'sh';
  code: string;
  line: number;
  /** From `<!-- run: … -->`; `null`: `<!-- not run -->`. */
  command: string | null | undefined;
}

/** The README's fenced js/ts/sh blocks, with what the comment before each says. */
export function readmeBlocks(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w+)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    assert.ok(end > i, `README.md:${i + 1}: a code block that is never closed`);
    const lang = ({ js: 'js', javascript: 'js', mjs: 'js', ts: 'ts', typescript: 'ts', sh: 'sh', bash: 'sh', shell: 'sh' } as const)[open[1]! as 'js'];
    const before = lines[i - 1]?.trim() ?? '';
    if (lang) {
      const directive = /^<!--\s*run:\s*(.+?)\s*-->$/.exec(before);
      blocks.push({ lang, code: lines.slice(i + 1, end).join('\n'), line: i + 1, command: /^<!--\s*not run\s*-->$/.test(before) ? null : directive?.[1] });
    }
    i = end;
  }
  return blocks;
}

const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const TSC_FLAGS = ['--strict', '--noUnusedLocals', '--noUnusedParameters', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--types', 'node', '--typeRoots', join(root, 'node_modules', '@types')];

async function typeCheck(dir: string, file: string, emit: boolean): Promise<void> {
  const args = [tsc, ...TSC_FLAGS, ...(emit ? [] : ['--noEmit', '--allowJs', '--checkJs']), file];
  try {
    await run(process.execPath, args, { cwd: dir });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    assert.fail(`tsc --strict ${file}:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

async function shell(dir: string, script: string, env: NodeJS.ProcessEnv): Promise<void> {
  try {
    await run('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: dir, env, timeout: 300_000 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: unknown };
    assert.fail(`exit ${String(e.code)}:\n${script}\n--- stdout\n${e.stdout ?? ''}--- stderr\n${e.stderr ?? ''}`);
  }
}

test("the README's code blocks run as written", async (t) => {
  if (!(await needCriu(t))) return;
  const blocks = readmeBlocks(readFileSync(join(root, 'README.md'), 'utf8'));
  assert.ok(blocks.filter((b) => b.command !== null).length >= 3, 'the README has blocks to run');
  const dir = tempDir(t, 'ckpt-readme-');
  // The package as an installed dependency, and its command on PATH.
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules', 'ckpt'));
  mkdirSync(join(dir, 'bin'));
  symlinkSync(ckptBin, join(dir, 'bin', 'ckpt'));
  writeFileSync(join(dir, 'package.json'), '{ "type": "module", "private": true }\n');
  const env = { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}`, CKPT_STATE_DIR: join(dir, 'state'), UV_USE_IO_URING: '0' };
  for (const b of blocks) {
    if (b.command === null) continue;
    await t.test(`README.md:${b.line} (${b.lang})`, async () => {
      if (b.lang === 'sh') return shell(dir, b.code, env);
      const source = b.lang === 'ts' ? 'example.mts' : 'example.mjs';
      writeFileSync(join(dir, source), `${b.code}\n`);
      await typeCheck(dir, source, b.lang === 'ts');
      await shell(dir, b.command ?? 'node example.mjs', env);
    });
  }
});

test('npm run demo into a pipe: no terminal escapes', async (t) => {
  if (!(await needCriu(t))) return;
  const { stdout, stderr } = await run(process.execPath, [join(root, 'scripts', 'demo.mjs')], { env: { ...process.env, UV_USE_IO_URING: '0' }, timeout: 300_000 });
  assert.match(stdout, /== 4\. ckpt restart/);
  assert.doesNotMatch(stdout + stderr, /\x1b/);
});

#!/usr/bin/env node
// Writes the README's table of CKPT_* environment variables from the compiled table
// (dist/config.js, built from src/config.ts) between the markers
// `<!-- env-table:begin -->` and `<!-- env-table:end -->`.
// --check: writes nothing; exits 1 with one line when README.md is not current.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = `${root}README.md`;
const BEGIN = '<!-- env-table:begin -->';
const END = '<!-- env-table:end -->';

const fail = (line) => {
  console.error(`gen-env-table: ${line}`);
  process.exit(1);
};

let CONFIG;
try {
  ({ CONFIG } = await import(new URL('../dist/config.js', import.meta.url).href));
} catch (err) {
  fail(`cannot load dist/config.js (run \`npx tsc -p tsconfig.json\` first): ${String(err?.message ?? err).split('\n')[0]}`);
}

/** Who sets a variable, when it is not the user: said before its meaning. */
const SETTER = { ckpt: '*Set by ckpt.* ', tests: '*Tests.* ', build: '*Build.* ' };

const cell = (text) => String(text).replaceAll('|', '\\|');

function envTable(config) {
  const rows = Object.entries(config).map(
    ([name, s]) => `| \`${name}\` | ${cell(s.defaultText)} | ${SETTER[s.setBy] ?? ''}${cell(s.meaning)} |`,
  );
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

const text = readFileSync(readme, 'utf8');
const begin = text.indexOf(BEGIN);
const end = text.indexOf(END);
if (begin < 0 || end < begin) fail(`README.md has no ${BEGIN} … ${END} markers`);
const current = `${text.slice(0, begin + BEGIN.length)}\n${envTable(CONFIG)}\n${text.slice(end)}`;

if (process.argv.includes('--check')) {
  if (current !== text) fail('README.md\'s table of environment variables is not current: run `node scripts/gen-env-table.mjs`');
  console.log('gen-env-table: README.md is current');
} else if (current !== text) {
  writeFileSync(readme, current);
  console.log('gen-env-table: README.md updated');
} else {
  console.log('gen-env-table: README.md is current');
}

#!/usr/bin/env node
// Checks that the imports in src/ follow the layers docs/ARCHITECTURE.md draws: a
// folder imports only folders of lower layers (its own, of course). Reads every static
// and dynamic relative import. Imports that break the order today are listed in
// KNOWN (file → folder), each one to be removed by the architecture issue; any other
// upward or sideways import fails the check, and so does a KNOWN entry that no longer
// occurs (the list only shrinks). Prints one line per problem; exit 1 if any.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src');

/** Layer of each folder (higher may import lower); folders of one band do not import each other. */
const LAYER = {
  '(top):index.ts': 6,
  cli: 5,
  control: 4.5,
  process: 4.5,
  agent: 4.5,
  runtime: 4,
  isolate: 4,
  rank: 4,
  crs: 3.5,
  criu: 3,
  registry: 2.5,
  store: 2,
  wire: 1.5,
  util: 1,
  '(top)': 0, // errors.ts, version.ts, config: below everything
};

/** Imports that break the order today (file under src/ → folder it imports). */
const KNOWN = new Set([
]);

function files(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const folderOf = (file) => {
  const parts = relative(root, file).split('/');
  return parts.length > 1 ? parts[0] : '(top)';
};
const layerOf = (file) => (relative(root, file) === 'index.ts' ? LAYER['(top):index.ts'] : LAYER[folderOf(file)]);

const problems = [];
const seen = new Set();
for (const file of files(root)) {
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
    const target = resolve(dirname(file), (m[1] ?? m[2]).replace(/\.js$/, '.ts'));
    const from = folderOf(file);
    const to = folderOf(target);
    if (from === to && relative(root, file) !== 'index.ts') continue;
    const rel = relative(root, file);
    const a = layerOf(file);
    const b = layerOf(target);
    if (a === undefined || b === undefined) {
      problems.push(`${rel}: folder '${a === undefined ? from : to}' is not in the layer table (scripts/check-layers.mjs)`);
      continue;
    }
    if (b < a) continue;
    const key = `${rel} -> ${to}`;
    seen.add(key);
    if (!KNOWN.has(key)) problems.push(`${rel} imports ${relative(root, target)}: '${to}' is not below '${from}' (docs/ARCHITECTURE.md)`);
  }
}
for (const k of KNOWN) if (!seen.has(k)) problems.push(`known exception '${k}' no longer occurs: remove it from KNOWN`);
for (const p of problems) console.error(`check-layers: ${p}`);
if (problems.length === 0) console.log(`check-layers: ${files(root).length} files, imports follow the layers (${KNOWN.size} known exceptions left)`);
process.exit(problems.length ? 1 : 0);

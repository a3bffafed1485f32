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

/** Type-checks `source` (a user's module importing 'ckpt') with `tsc --strict` against the published typings: the diagnostics. */
async function typeErrors(source: string): Promise<string[]> {
  const ts = (await import('typescript')).default;
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-typings-'));
  try {
    const file = join(dir, 'user.ts');
    writeFileSync(file, source);
    const types = fileURLToPath(new URL('../dist/types/', import.meta.url));
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ES2022,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      skipLibCheck: true,
      types: ['node'],
      typeRoots: [fileURLToPath(new URL('../node_modules/@types/', import.meta.url))],
      paths: { ckpt: [`${types}index.d.ts`], 'ckpt/rank': [`${types}rank/index.d.ts`] },
    });
    return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('registerSelf<T>: load() gets the type save() returns (strict), and a mismatch is an error', async () => {
  assert.deepEqual(
    await typeErrors(`
import { registerSelf } from 'ckpt';
let state = { iter: 0 };
registerSelf({ save: () => state, load: (s) => void (state = s) });
registerSelf<{ n: number }>({ save: async () => ({ n: 1 }), load: async (s) => void s.n.toFixed() });
registerSelf({ save: () => new Uint8Array(4), load: (b) => void b.byteLength });
`),
    [],
  );
  const wrong = await typeErrors(`
import { registerSelf } from 'ckpt';
registerSelf({ save: () => ({ iter: 0 }), load: (s: { name: string }) => void s.name });
`);
  assert.equal(wrong.length, 1, wrong.join('\n'));
});

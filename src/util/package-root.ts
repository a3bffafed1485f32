// Where the installed package is, for the files ckpt finds beside its code: the
// native addons (build/Release) and the node agent's entry point. Code runs from
// tsc's output (dist/…, each module at its own depth) or from the bundle
// (dist/bundle/…, chunks at another depth), so the root is found by walking up to
// ckpt's package.json rather than by a fixed relative path.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Defined (true) by scripts/bundle.mjs in the bundled build; undeclared in tsc's output. */
declare const __CKPT_BUNDLE__: boolean | undefined;

/** Whether this code runs from the bundle (dist/bundle) rather than tsc's output. */
export const bundled: boolean = typeof __CKPT_BUNDLE__ !== 'undefined' && __CKPT_BUNDLE__ === true;

let root: string | undefined;

/** The package's root directory, with a trailing slash. */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      if ((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name === 'ckpt') break;
    } catch {
      // no package.json here (or not ours): one level up
    }
    const up = dirname(dir);
    if (up === dir) {
      // Not found (a copied tree without package.json): tsc's layout, dist/util/ two levels down.
      dir = fileURLToPath(new URL('../../', import.meta.url));
      break;
    }
    dir = up;
  }
  root = dir.endsWith('/') ? dir : `${dir}/`;
  return root;
}

/**
 * The file of a separate Node program of ckpt (e.g. 'agent/main'), in the build this
 * code runs from; `commonjs`: bundled as one CommonJS file (scripts/bundle.mjs).
 */
export function builtEntry(name: string, commonjs = false): string {
  return join(packageRoot(), 'dist', ...(bundled ? ['bundle'] : []), `${name}.${bundled && commonjs ? 'cjs' : 'js'}`);
}

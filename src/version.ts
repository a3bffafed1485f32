import { readFileSync } from 'node:fs';

/** Set by scripts/bundle.mjs to package.json's version: the bundle reads no file for it. */
declare const __CKPT_VERSION__: string | undefined;

/** ckpt's own version, from package.json (recorded in every snapshot). */
export const version: string =
  typeof __CKPT_VERSION__ === 'string'
    ? __CKPT_VERSION__
    : (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

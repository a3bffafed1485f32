import { readFileSync } from 'node:fs';

/** ckpt's own version, from package.json (recorded in every snapshot). */
export const version: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

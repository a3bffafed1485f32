// How the CLI speaks: results to stdout (text; --json output: json.ts), progress and errors to stderr.
import { CkptError } from '../errors.js';

export function println(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** Progress lines for long operations: shown on a terminal only, never in --json mode. */
export function progress(json: boolean): (message: string) => void {
  if (json || !process.stderr.isTTY) return () => {};
  const start = Date.now();
  return (message) => process.stderr.write(`\r\x1b[K[${((Date.now() - start) / 1000).toFixed(1)}s] ${message}`);
}

export function endProgress(json: boolean): void {
  if (!json && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
}

/** Multi-line texts (a usage with several forms) folded onto one line. */
const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, ' | ').trim();

/** One line naming the cause; a hint on the same line. Never a stack trace. */
export function formatError(err: unknown): string {
  if (err instanceof CkptError) {
    return `ckpt: ${oneLine(err.message)}${err.hint ? ` (${oneLine(err.hint)})` : ''} [${err.code}]`;
  }
  const msg = err instanceof Error ? err.message : String(err);
  return `ckpt: internal error: ${msg.split('\n')[0]} [ECKPT_INTERNAL]`;
}

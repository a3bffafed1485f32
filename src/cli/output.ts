// How the CLI speaks: results to stdout (text; --json output: json.ts), progress and errors to stderr.
import { isatty } from 'node:tty';
import { CkptError } from '../errors.js';
import { formatBytes, formatDuration, formatRate, progressLine } from '../util/format-bytes.js';
import type { WriteProgress } from '../store/image-watcher.js';

/**
 * A line as a terminal shows it: control characters (escape sequences, carriage
 * returns, newlines inside a field) written as `\xNN`. What ckpt prints comes partly
 * from files another user may have written (a manifest's command line, a path): none of
 * it may retitle, clear or redraw the reader's terminal, or forge a line.
 */
export const printable = (text: string): string => text.replace(/[\x00-\x08\x0a-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

/** Results to stdout; `\n` and tabs between fields are ours, any other control character is shown escaped. */
export function println(line = ''): void {
  process.stdout.write(`${line.split('\n').map(printable).join('\n')}\n`);
}

/**
 * Whether stderr is a terminal, asked of the descriptor: process.stderr is built on
 * first use (for a pipe, a socket stream: ~1 ms, and one more handle at exit), needed only to write.
 */
const stderrIsTerminal = (): boolean => isatty(2);

/** Progress lines for long operations: shown on a terminal only, never in --json mode. */
export function progress(json: boolean): (message: string) => void {
  if (json || !stderrIsTerminal()) return () => {};
  const start = Date.now();
  return (message) => process.stderr.write(`\r\x1b[K[${((Date.now() - start) / 1000).toFixed(1)}s] ${message}`);
}

export function endProgress(json: boolean): void {
  if (!json && stderrIsTerminal()) process.stderr.write('\r\x1b[K');
}

/**
 * A job's checkpoint on a terminal: one updating line with the total and each rank's
 * bytes ("writing 218 MB of ~400 MB, 300 MB/s, ~0.6 s left · rank 0 120 MB, rank 1 98 MB");
 * undefined (ask for no progress) with --json or when not on a terminal.
 */
export function rankProgress(json: boolean): ((p: WriteProgress & { rank: number }) => void) | undefined {
  if (json || !stderrIsTerminal()) return undefined;
  const line = progress(json);
  const ranks = new Map<number, WriteProgress>();
  return (p) => {
    ranks.set(p.rank, p);
    const all = [...ranks.values()];
    const sum = (f: (x: WriteProgress) => number | undefined) => all.reduce((n, x) => n + (f(x) ?? 0), 0);
    const bytes = sum((x) => x.bytes);
    const expected = all.every((x) => x.expectedBytes) ? sum((x) => x.expectedBytes) : undefined;
    const rate = sum((x) => x.bytesPerSecond);
    const total: WriteProgress = {
      bytes,
      bytesPerSecond: rate,
      elapsedMs: Math.max(...all.map((x) => x.elapsedMs)),
      ...(expected ? { expectedBytes: expected } : {}),
      ...(expected && expected > bytes && rate > 0 ? { etaMs: ((expected - bytes) / rate) * 1000 } : {}),
    };
    const each = [...ranks.entries()].sort((a, b) => a[0] - b[0]).map(([r, x]) => `rank ${r} ${formatBytes(x.bytes)}`);
    line(`${progressLine(total)} · ${each.join(', ')}`);
  };
}

/** What a checkpoint took, as its final line and its --json fields say it (sizes in bytes, times in ms). */
export interface CheckpointFigures {
  bytes: number;
  durationMs: number;
  frozenMs?: number;
}

/** The --json fields: `bytes`, `durationMs`, `frozenMs` (null when unknown), `bytesPerSecond`. */
export function figuresJson(f: CheckpointFigures): { bytes: number; durationMs: number; frozenMs: number | null; bytesPerSecond: number } {
  return { bytes: f.bytes, durationMs: f.durationMs, frozenMs: f.frozenMs ?? null, bytesPerSecond: Math.round(f.bytes / (Math.max(1, f.durationMs) / 1000)) };
}

/** "1.0 GB in 2.3 s, 445 MB/s, frozen 2.1 s" */
export function figuresText(f: CheckpointFigures): string {
  const frozen = f.frozenMs !== undefined ? `, frozen ${formatDuration(f.frozenMs)}` : '';
  return `${formatBytes(f.bytes)} in ${formatDuration(f.durationMs)}, ${formatRate(figuresJson(f).bytesPerSecond)}${frozen}`;
}

/** Multi-line texts (a usage with several forms) folded onto one line. */
const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, ' | ').trim();

/** One line naming the cause; a hint on the same line. Never a stack trace. */
export function formatError(err: unknown): string {
  if (err instanceof CkptError) {
    return `ckpt: ${printable(oneLine(err.message))}${err.hint ? ` (${printable(oneLine(err.hint))})` : ''} [${err.code}]`;
  }
  const msg = err instanceof Error ? err.message : String(err);
  return `ckpt: internal error: ${printable(msg.split('\n')[0] ?? '')} [ECKPT_INTERNAL]`;
}

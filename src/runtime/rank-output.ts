// Where the ranks' output goes. `--output DIR`: one file per rank and stream, every
// one opened before anything starts (a refused file fails the launch, not rank k of
// N), each taken by its rank's start. Otherwise the ranks write into pipes whose
// lines are forwarded: `[rank] line` on our stdout/stderr, and 'output' events.
import { closeSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { CkptError, ErrorCodes } from '../errors.js';
import type { OutputMode } from './job-types.js';
import { forwardLines, openOutputFile, prefixedSink, prepareOutputDir } from './output.js';

export type StreamName = 'stdout' | 'stderr';

export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/** The rank output files of a job (`--output DIR`): DIR/rank-N.out and DIR/rank-N.err. */
export class RankOutputFiles {
  /** Each rank's [stdout, stderr] fds; undefined once taken. */
  private readonly files = new Map<number, (number | undefined)[]>();

  /** Opens every rank's two files; a restored job appends to what its ranks wrote before. */
  constructor(dir: string, size: number, append: boolean) {
    try {
      const out = prepareOutputDir(dir);
      for (let rank = 0; rank < size; rank++) {
        // Set before the second open: a refused .err still closes the .out.
        const pair: (number | undefined)[] = [openOutputFile(out, `rank-${rank}.out`, append)];
        this.files.set(rank, pair);
        pair.push(openOutputFile(out, `rank-${rank}.err`, append));
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** The fd of rank `rank`'s stdout (0) or stderr (1) file, now the caller's to close. */
  take(rank: number, stream: 0 | 1): number {
    const pair = this.files.get(rank);
    const fd = pair?.[stream];
    if (pair === undefined || fd === undefined) throw new CkptError(ErrorCodes.INTERNAL, `no output file for rank ${rank}`);
    pair[stream] = undefined;
    return fd;
  }

  /** Closes the files no rank took (each rank holds its own copies of the others). */
  close(): void {
    for (const pair of this.files.values()) for (const fd of pair) if (fd !== undefined) closeQuietly(fd);
    this.files.clear();
  }
}

/**
 * Forwards a rank's piped output line by line: `[rank] line` to the prefix streams
 * (prefix mode), and to `onLine` (the 'output' event). Resolves per stream at its end.
 */
export function forwardRankOutput(
  rank: number,
  streams: { stdout: Readable | null; stderr: Readable | null },
  output: OutputMode,
  onLine: (stream: StreamName, line: Buffer) => void,
): Promise<void>[] {
  const ends: Promise<void>[] = [];
  for (const name of ['stdout', 'stderr'] as const) {
    const stream = streams[name];
    if (!stream) continue;
    const sink = output.mode === 'prefix' ? prefixedSink(output[name] ?? process[name], rank) : undefined;
    ends.push(
      forwardLines(stream, (line) => {
        sink?.(line);
        onLine(name, line);
      }),
    );
  }
  return ends;
}

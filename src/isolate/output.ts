// An isolated job writes its stdout/stderr to O_APPEND files in a private per-job
// directory (opened inside the job: CRIU cannot dump an fd that leads outside the
// mount namespace, and it accepts an O_APPEND file that grew after the dump). The
// launcher follows those files and forwards them line by line.
import { closeSync, openSync, readSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Writable } from 'node:stream';
import { mkdirPrivate, PRIVATE_FILE_MODE } from '../util/fsx.js';
import { stateDir } from '../util/paths.js';
import { removeOwnDir } from '../util/remove-tree.js';

const MAX_LINE = 64 * 1024;
const POLL_MS = 50;

/** `<state>/isolated/`: the parent of every isolated job's output directory. */
export function isolatedRoot(): string {
  return join(stateDir(), 'isolated');
}

/** Creates `<state>/isolated/ckpt-<id>-io/` (0700) with empty stdout and stderr files (0600). */
export function createOutputDir(id: string): string {
  const dir = join(isolatedRoot(), `ckpt-${id}-io`);
  mkdirPrivate(dir);
  for (const name of ['stdout', 'stderr']) closeSync(openSync(join(dir, name), 'a', PRIVATE_FILE_MODE));
  return dir;
}

/** Removes an output directory made by createOutputDir (and nothing else). */
export function removeOutputDir(dir: string): void {
  if (/^ckpt-[0-9a-f]+-io$/.test(basename(dir))) removeOwnDir(dir);
}

/** Follows one growing file from its start and hands each complete line to `sink`. */
export class FileFollower {
  private offset = 0;
  private partial = Buffer.alloc(0);
  private timer: NodeJS.Timeout | undefined;
  private readonly buf = Buffer.alloc(64 * 1024);

  constructor(
    private readonly path: string,
    private readonly sink: (line: Buffer) => void,
  ) {}

  start(): this {
    this.timer = setInterval(() => this.poll(), POLL_MS);
    return this;
  }

  /** Reads what is there now. */
  poll(): void {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch {
      return;
    }
    try {
      for (;;) {
        const n = readSync(fd, this.buf, 0, this.buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        this.take(this.buf.subarray(0, n));
      }
    } finally {
      closeSync(fd);
    }
  }

  private take(chunk: Buffer): void {
    let data = this.partial.length ? Buffer.concat([this.partial, chunk]) : Buffer.from(chunk);
    for (;;) {
      const nl = data.indexOf(0x0a);
      if (nl < 0) break;
      this.sink(data.subarray(0, nl));
      data = data.subarray(nl + 1);
    }
    if (data.length >= MAX_LINE) {
      this.sink(data);
      data = Buffer.alloc(0);
    }
    this.partial = Buffer.from(data);
  }

  /** Stops following after reading the rest; an unterminated last line is forwarded too. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.poll();
    if (this.partial.length) this.sink(this.partial);
    this.partial = Buffer.alloc(0);
  }
}

/** Follows DIR/stdout and DIR/stderr onto two writable streams. */
export function followOutput(dir: string, out: Writable = process.stdout, err: Writable = process.stderr): { stop(): void } {
  const nl = Buffer.from('\n');
  const followers = [
    new FileFollower(join(dir, 'stdout'), (line) => out.write(Buffer.concat([line, nl]))).start(),
    new FileFollower(join(dir, 'stderr'), (line) => err.write(Buffer.concat([line, nl]))).start(),
  ];
  return { stop: () => followers.forEach((f) => f.stop()) };
}

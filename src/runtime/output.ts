// Rank output, forwarded line by line with a `[rank]` prefix so the lines of
// different ranks never interleave mid-line. A line is written whole once its
// newline arrives; an over-long line is cut at MAX_LINE so memory stays bounded.
import type { Readable, Writable } from 'node:stream';

const MAX_LINE = 64 * 1024;
const NL = 0x0a;

export interface LineSink {
  (line: Buffer): void;
}

/** Splits a byte stream into lines (without the newline) and hands each to `sink`. */
export function forwardLines(stream: Readable, sink: LineSink): Promise<void> {
  let partial: Buffer[] = [];
  let partialLength = 0;
  const flushPartial = () => {
    if (partialLength === 0) return;
    sink(partial.length === 1 ? partial[0]! : Buffer.concat(partial, partialLength));
    partial = [];
    partialLength = 0;
  };
  stream.on('data', (chunk: Buffer) => {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NL, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      if (partialLength) {
        partial.push(piece);
        partialLength += piece.length;
        flushPartial();
      } else {
        sink(piece);
      }
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      partial.push(rest);
      partialLength += rest.length;
      if (partialLength >= MAX_LINE) flushPartial();
    }
  });
  return new Promise((resolve) => {
    const done = () => {
      flushPartial();
      resolve();
    };
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', done);
  });
}

/** A sink writing `[rank] line\n` to a writable stream (stdout/stderr). */
export function prefixedSink(out: Writable, rank: number): LineSink {
  const prefix = Buffer.from(`[${rank}] `);
  return (line) => {
    out.write(Buffer.concat([prefix, line, Buffer.from('\n')]));
  };
}

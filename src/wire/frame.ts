// The one wire format ckpt's job runtime speaks, on the out-of-band channel
// (rank ↔ coordinator, control client ↔ coordinator) and between ranks.
//
//   0      2     3      4           8          12
//   | "CK" | ver | kind | length u32 | tag i32 | payload (length bytes)
//
// Big-endian. The magic makes a stray client (or a different protocol) fail on the
// first bytes instead of being misread; the version lets a later ckpt refuse an
// older peer cleanly; the length is checked against a per-channel limit *before*
// anything is buffered, so an oversized or garbage frame costs 12 bytes, not memory.
import { CkptError, ErrorCodes } from '../errors.js';

export const FRAME_MAGIC = 0x434b; // "CK"
export const FRAME_VERSION = 1;
export const HEADER_BYTES = 12;

/** What the payload is. Control frames are JSON objects with a `type`; data frames carry user messages. */
export const FrameKind = {
  /** A JSON control message (OOB protocol, peer hello). */
  CONTROL: 1,
  /** User data: raw bytes (Uint8Array/Buffer). */
  BYTES: 2,
  /** User data: a JSON-serialisable value, UTF-8 JSON text. */
  JSON: 3,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

/** Control messages are small; a bigger one is malformed or hostile. */
export const MAX_CONTROL_BYTES = 1 << 20; // 1 MiB
/** Default ceiling for one rank-to-rank message. */
export const MAX_DATA_BYTES = 512 << 20; // 512 MiB

/** Reads (onread) land in a slab this big, unless a big payload is being filled in place. */
const SLAB_BYTES = 512 * 1024;
/** Frames up to this size (header included) are read into a slab and handed out as views into it. */
const SLAB_FRAME_MAX = 128 * 1024 + HEADER_BYTES;
/** Fewer bytes left at a slab's end than this: the next read starts a new slab. */
const MIN_READ_ROOM = 16 * 1024;
/** Most bytes read into a slab when no frame is partly read. */
const READ_AHEAD = 64 * 1024 + 2 * HEADER_BYTES;

export interface Frame {
  kind: FrameKind;
  tag: number;
  payload: Buffer;
}

export function encodeHeader(kind: FrameKind, tag: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_BYTES);
  h.writeUInt16BE(FRAME_MAGIC, 0);
  h.writeUInt8(FRAME_VERSION, 2);
  h.writeUInt8(kind, 3);
  h.writeUInt32BE(length, 4);
  h.writeInt32BE(tag, 8);
  return h;
}

/** Header and payload in one buffer: one write, one syscall, for small frames. */
export function encodeFrame(kind: FrameKind, tag: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.byteLength);
  out.writeUInt16BE(FRAME_MAGIC, 0);
  out.writeUInt8(FRAME_VERSION, 2);
  out.writeUInt8(kind, 3);
  out.writeUInt32BE(payload.byteLength, 4);
  out.writeInt32BE(tag, 8);
  out.set(payload, HEADER_BYTES);
  return out;
}

export function encodeControl(message: ControlMessage): Buffer {
  return encodeFrame(FrameKind.CONTROL, 0, Buffer.from(JSON.stringify(message), 'utf8'));
}

/** Every control message is a JSON object naming its `type`. */
export interface ControlMessage {
  type: string;
  [key: string]: unknown;
}

export function decodeControl(payload: Buffer): ControlMessage {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw protocolError('control message is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || typeof (value as { type?: unknown }).type !== 'string') {
    throw protocolError('control message is not an object with a string "type"');
  }
  return value as ControlMessage;
}

export function protocolError(message: string, details?: Record<string, unknown>): CkptError {
  return new CkptError(ErrorCodes.OOB_PROTOCOL, message, details ? { details } : {});
}

/**
 * Incremental decoder: feed it socket chunks, it calls `onFrame` for each whole frame.
 * A payload that sits inside one chunk is handed out as a view (no copy); one that
 * spans chunks is assembled once into a buffer of its final size, or into the one
 * `bodyFor` gives (which then gets every payload it claims, whole or not).
 */
export class FrameDecoder {
  private head = Buffer.allocUnsafe(HEADER_BYTES);
  private headFill = 0;
  private kind: FrameKind = FrameKind.CONTROL;
  private tag = 0;
  private body: Buffer | undefined;
  private bodyFill = 0;
  private failed = false;

  constructor(
    private readonly onFrame: (frame: Frame) => void,
    /** Largest payload accepted, per kind: control frames get a tighter limit. */
    private readonly limits: { control: number; data: number } = { control: MAX_CONTROL_BYTES, data: MAX_DATA_BYTES },
    /**
     * Where a payload too big for a slab should be read to (exactly `length` bytes),
     * asked once its header is in: a receiver's own buffer (recv `into`), read into
     * by the kernel directly. Undefined: a new buffer of its own.
     */
    private readonly bodyFor?: (kind: FrameKind, tag: number, length: number) => Buffer | undefined,
  ) {}

  /** Throws a CkptError (OOB_PROTOCOL) on a malformed or oversized frame; the stream is then unusable. */
  push(chunk: Buffer): void {
    if (this.failed) return;
    let off = 0;
    const n = chunk.length;
    while (off < n) {
      if (this.body === undefined) {
        // Fast path: a whole header (and maybe the whole payload) inside this chunk.
        if (this.headFill === 0 && n - off >= HEADER_BYTES) {
          this.readHeader(chunk, off);
          off += HEADER_BYTES;
        } else {
          const take = Math.min(HEADER_BYTES - this.headFill, n - off);
          chunk.copy(this.head, this.headFill, off, off + take);
          this.headFill += take;
          off += take;
          if (this.headFill < HEADER_BYTES) return;
          this.readHeader(this.head, 0);
          this.headFill = 0;
        }
        const length = this.pendingLength;
        // A receiver's buffer, when one is waiting for this frame (as commitRead does).
        const claimed = this.bodyFor !== undefined && this.kind !== FrameKind.CONTROL ? this.bodyFor(this.kind, this.tag, length) : undefined;
        if (claimed === undefined && n - off >= length) {
          const payload = chunk.subarray(off, off + length);
          off += length;
          this.onFrame({ kind: this.kind, tag: this.tag, payload });
          continue;
        }
        this.body = claimed ?? Buffer.allocUnsafe(length);
        this.bodyFill = 0;
        if (length === 0) {
          this.body = undefined;
          this.onFrame({ kind: this.kind, tag: this.tag, payload: claimed! });
          continue;
        }
      }
      const body = this.body;
      const take = Math.min(body.length - this.bodyFill, n - off);
      chunk.copy(body, this.bodyFill, off, off + take);
      this.bodyFill += take;
      off += take;
      if (this.bodyFill === body.length) {
        this.body = undefined;
        this.onFrame({ kind: this.kind, tag: this.tag, payload: body });
      }
    }
  }

  /** True when no partial frame is buffered (a clean place for the stream to end). */
  get idle(): boolean {
    return this.headFill === 0 && this.body === undefined;
  }

  private pendingLength = 0;

  // ---- reads straight into our memory (sockets created with `onread`) ----------
  //
  // Reads land in a slab, one after another. A frame that lies whole in the slab is
  // handed out as a view into it (no copy, no allocation per message); the slab is
  // never written again where a view was handed out: when it runs out of room, a new
  // one is started (the old one lives on as long as a view into it does). A frame too
  // big for a slab gets a buffer of its own size, and the kernel writes straight into
  // it (no copy: bandwidth close to a bare socket).
  private slab: Buffer | undefined;
  /** Views into the current slab were handed out up to here: nothing before it may be overwritten. */
  private lentEnd = 0;
  /** First byte of the slab not yet consumed (a partial frame begins here). */
  private start = 0;
  /** Where the next read lands in the slab. */
  private pos = 0;
  /** Bytes the partial frame at `start` needs in all (header, then header + payload). */
  private want = HEADER_BYTES;
  private direct = false;

  /** The `onread` callback's buffer: where the kernel should put the next bytes. */
  readBuffer(): Uint8Array {
    const body = this.body;
    if (body !== undefined) {
      this.direct = true;
      return body.subarray(this.bodyFill);
    }
    this.direct = false;
    let slab = this.slab;
    // Nothing partial: the next read may land right after the last view handed out.
    if (this.start === this.pos) this.start = this.pos = this.lentEnd;
    if (slab === undefined || this.start + this.want > slab.length || (this.want === HEADER_BYTES && slab.length - this.pos < MIN_READ_ROOM)) {
      // Move the partial frame's bytes to just after the views (or to a new slab) and read on behind them.
      const keep = this.pos - this.start;
      const to = this.lentEnd;
      if (slab !== undefined && slab.length - to >= Math.max(this.want, keep + MIN_READ_ROOM)) {
        if (keep > 0 && this.start > to) slab.copyWithin(to, this.start, this.pos);
      } else {
        const fresh = Buffer.allocUnsafeSlow(SLAB_BYTES);
        if (slab !== undefined && keep > 0) slab.copy(fresh, 0, this.start, this.pos);
        this.slab = slab = fresh;
        this.lentEnd = 0;
      }
      this.start = this.lentEnd;
      this.pos = this.start + keep;
    }
    // Between frames, read at most READ_AHEAD: the next frame may be a big one, whose
    // bytes are better read straight into its own buffer than copied from here.
    return this.want === HEADER_BYTES && this.pos === this.start ? slab.subarray(this.pos, this.pos + READ_AHEAD) : slab.subarray(this.pos);
  }

  /** The `onread` callback's half: `n` bytes landed in the last readBuffer(). */
  commitRead(n: number): void {
    if (this.failed) return;
    if (this.direct) {
      const body = this.body!;
      this.bodyFill += n;
      if (this.bodyFill === body.length) {
        this.body = undefined;
        this.onFrame({ kind: this.kind, tag: this.tag, payload: body });
      }
      return;
    }
    const slab = this.slab!;
    this.pos += n;
    for (;;) {
      const have = this.pos - this.start;
      if (have < HEADER_BYTES) {
        this.want = HEADER_BYTES;
        return;
      }
      const at = this.start;
      if (this.want === HEADER_BYTES) {
        this.readHeader(slab, at);
        const total = HEADER_BYTES + this.pendingLength;
        // A receiver's buffer (any size: the slab is then not lent and is reused), or,
        // too big for a slab, a buffer of its own; with what already arrived copied in.
        const body =
          (this.bodyFor !== undefined && this.kind !== FrameKind.CONTROL ? this.bodyFor(this.kind, this.tag, this.pendingLength) : undefined) ??
          (total > SLAB_FRAME_MAX ? Buffer.allocUnsafe(this.pendingLength) : undefined);
        if (body !== undefined) {
          const got = Math.min(have, total) - HEADER_BYTES;
          slab.copy(body, 0, at + HEADER_BYTES, at + HEADER_BYTES + got);
          this.start = at + HEADER_BYTES + got;
          if (got === body.length) {
            this.onFrame({ kind: this.kind, tag: this.tag, payload: body });
            continue;
          }
          this.body = body;
          this.bodyFill = got;
          return;
        }
        this.want = total;
      }
      if (have < this.want) return;
      const payload = slab.subarray(at + HEADER_BYTES, at + this.want);
      this.start = this.lentEnd = at + this.want;
      this.want = HEADER_BYTES;
      this.onFrame({ kind: this.kind, tag: this.tag, payload });
    }
  }

  private readHeader(buf: Buffer, at: number): void {
    const magic = buf.readUInt16BE(at);
    const version = buf.readUInt8(at + 2);
    const kind = buf.readUInt8(at + 3);
    const length = buf.readUInt32BE(at + 4);
    const tag = buf.readInt32BE(at + 8);
    const fail = (message: string, details: Record<string, unknown>): never => {
      this.failed = true;
      throw protocolError(message, details);
    };
    if (magic !== FRAME_MAGIC) fail('not a ckpt frame (bad magic)', { magic });
    if (version !== FRAME_VERSION) fail(`unsupported frame version ${version} (this ckpt speaks ${FRAME_VERSION})`, { version });
    if (kind !== FrameKind.CONTROL && kind !== FrameKind.BYTES && kind !== FrameKind.JSON) fail(`unknown frame kind ${kind}`, { kind });
    const limit = kind === FrameKind.CONTROL ? this.limits.control : this.limits.data;
    if (length > limit) fail(`frame of ${length} bytes exceeds the limit of ${limit} bytes`, { length, limit });
    this.kind = kind as FrameKind;
    this.tag = tag;
    this.pendingLength = length;
  }
}

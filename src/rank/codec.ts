// What travels between ranks: bytes (arrive as a Buffer) or any JSON value, and
// how each becomes a frame's payload and back.
import { CkptError, ErrorCodes } from '../errors.js';
import { FrameKind, MAX_DATA_BYTES } from '../wire/frame.js';

/** What travels: bytes (arrive as Buffer) or any JSON-serialisable value. */
export type Data = Uint8Array | JsonValue;
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A message as it arrived, before decoding. */
export interface RawMessage {
  source: number;
  tag: number;
  kind: FrameKind;
  payload: Buffer;
}

export function encodeData(data: unknown): { kind: FrameKind; payload: Uint8Array } {
  if (data instanceof Uint8Array) return { kind: FrameKind.BYTES, payload: withinLimit(data) };
  let text: string | undefined;
  try {
    text = JSON.stringify(data, faithful);
  } catch (err) {
    // A circular structure, a BigInt, a toJSON() that threw, or what `faithful` refused.
    throw new CkptError(ErrorCodes.USAGE, `cannot send this value: ${(err as Error).message} (send bytes or a JSON value)`, { cause: err });
  }
  if (text === undefined) throw new CkptError(ErrorCodes.USAGE, `cannot send ${typeof data}: send bytes or a JSON-serialisable value`);
  return { kind: FrameKind.JSON, payload: withinLimit(Buffer.from(text, 'utf8')) };
}

/**
 * JSON.stringify's replacer: refuses what JSON would carry as something else, so that
 * no rank gets a value other than the one sent — NaN and ±Infinity (null), a typed
 * array other than bytes, a Map or a Set (an object of its indices, or {}).
 */
function faithful(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`${value} is not a JSON number`);
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) throw new Error(`a ${value.constructor.name} would arrive as an object (send its bytes alone, as a Uint8Array over its buffer)`);
    if (value instanceof Map || value instanceof Set) throw new Error(`a ${value.constructor.name} is not JSON`);
  }
  return value;
}

/** A message larger than any receiver takes (a frame's limit) is refused here, before it could end the receiver's link. */
function withinLimit<T extends Uint8Array>(payload: T): T {
  if (payload.byteLength > MAX_DATA_BYTES) throw new CkptError(ErrorCodes.USAGE, `cannot send ${payload.byteLength} bytes: a message holds at most ${MAX_DATA_BYTES}`);
  return payload;
}

export function decodeData(m: { kind: FrameKind; payload: Buffer }): unknown {
  if (m.kind === FrameKind.BYTES) return m.payload;
  return JSON.parse(m.payload.toString('utf8'));
}

/** A bytes message as a view of `into` (copied there unless it was read there), when it fits. */
export function placeInto(m: RawMessage, into: Uint8Array): RawMessage {
  if (m.kind !== FrameKind.BYTES || m.payload.length > into.byteLength) return m;
  const view = Buffer.from(into.buffer, into.byteOffset, m.payload.length);
  if (m.payload.buffer !== into.buffer || m.payload.byteOffset !== into.byteOffset) m.payload.copy(view);
  return { ...m, payload: view };
}

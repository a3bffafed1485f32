// What travels between ranks: bytes (arrive as a Buffer) or any JSON value, and
// how each becomes a frame's payload and back.
import { CkptError, ErrorCodes } from '../errors.js';
import { FrameKind } from '../wire/frame.js';

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
  if (data instanceof Uint8Array) return { kind: FrameKind.BYTES, payload: data };
  const text = JSON.stringify(data);
  if (text === undefined) throw new CkptError(ErrorCodes.USAGE, `cannot send ${typeof data}: send bytes or a JSON-serialisable value`);
  return { kind: FrameKind.JSON, payload: Buffer.from(text, 'utf8') };
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

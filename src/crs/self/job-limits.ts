// How large a self rank's state may be to travel in its save reply.
import { CkptError, ErrorCodes } from '../../errors.js';

/** Up to this many bytes of state (save()'s and the library's), a rank replies with them instead of writing files. */
const DEFAULT_INLINE_BYTES = 64 << 10;
/** Base64 in a control message: 4/3 of it, under the 1 MiB limit with room to spare. */
export const MAX_INLINE_BYTES = 512 << 10;

/** CKPT_SELF_INLINE_BYTES, 0 … MAX_INLINE_BYTES. */
export function inlineBytesLimit(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.CKPT_SELF_INLINE_BYTES;
  if (v === undefined || v === '') return DEFAULT_INLINE_BYTES;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_INLINE_BYTES) throw new CkptError(ErrorCodes.USAGE, `CKPT_SELF_INLINE_BYTES must be a byte count from 0 to ${MAX_INLINE_BYTES}, not '${v}'`);
  return n;
}

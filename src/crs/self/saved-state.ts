// What a program's save() returned, as the bytes a snapshot keeps. save() is the
// program's code: one that never settles must not hold the checkpoint (and the
// program, waiting at its safe point) for ever, and what JSON cannot hold is said as
// such, not as an error from inside Node.
import { envNumber } from '../../config.js';
import { CkptError, ErrorCodes } from '../../errors.js';

export interface SavedState {
  /** save() returned bytes (kept as they are), not a JSON value. */
  binary: boolean;
  bytes: Uint8Array;
}

/** Calls save() and waits for it at most CKPT_CHECKPOINT_PHASE_MS; `who` names the caller in errors ("rank 3: "). */
export async function callSave(save: () => unknown, who = ''): Promise<SavedState> {
  const ms = envNumber('CKPT_CHECKPOINT_PHASE_MS');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new CkptError(ErrorCodes.TIMEOUT, `${who}save() did not settle within ${ms} ms: the checkpoint is given up, the program goes on`, { hint: 'CKPT_CHECKPOINT_PHASE_MS sets how long save() may take' }));
    }, ms);
  });
  let state: unknown;
  try {
    state = await Promise.race([Promise.resolve().then(save), late]);
  } finally {
    clearTimeout(timer);
  }
  if (state instanceof Uint8Array) return { binary: true, bytes: state };
  let text: string | undefined;
  try {
    text = JSON.stringify(state ?? null);
  } catch (err) {
    throw new CkptError(ErrorCodes.CHECKPOINT_FAILED, `${who}save() returned what JSON cannot hold: ${(err as Error).message}`, { cause: err });
  }
  if (text === undefined) throw new CkptError(ErrorCodes.CHECKPOINT_FAILED, `${who}save() returned a ${typeof state}: return bytes or a JSON value`);
  return { binary: false, bytes: Buffer.from(text) };
}

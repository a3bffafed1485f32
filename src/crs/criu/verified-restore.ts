// A CRIU restore overlapped with the snapshot's verification (store/verify.ts).
// CRIU reads the images (through the snapshot's descriptor, as the verification
// does) and builds the tree; at its post-restore stage every task is restored but
// still inside CRIU's restorer, before a single instruction of its own code. There
// the restore waits for the checksums: matched, it goes on; damaged, the hook answers
// false and CRIU kills the whole tree before failing the restore.
import { SnapshotError } from '../../errors.js';
import type { Verification } from '../../store/store.js';
import type { NotifyHook } from '../types.js';

/** CRIU's stage at which the tree is restored and not yet resumed. */
export const HOLD_STAGE = 'post-restore';

/** The notify hook of a restore: holds at post-restore until `verification` passed, then the caller's hook. */
export function holdUntilVerified(verification: Verification | undefined, hook?: NotifyHook): NotifyHook | undefined {
  if (!verification) return hook;
  return async (stage, pid) => {
    if (stage === HOLD_STAGE && (await verification.failure())) return false;
    return hook?.(stage, pid);
  };
}

/**
 * The error a failed restore reports: a damaged snapshot's (ECKPT_SNAPSHOT_CORRUPT,
 * CRIU's failure as its cause — bad images can make CRIU fail before post-restore),
 * else CRIU's own.
 */
export async function restoreError(verification: Verification | undefined, err: Error): Promise<Error> {
  const corrupt = await verification?.failure();
  if (!corrupt) return err;
  return new SnapshotError(corrupt.code, `${corrupt.message}; nothing of it was left running`, { cause: err, details: corrupt.details, hint: corrupt.hint });
}

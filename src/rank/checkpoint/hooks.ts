// The user's hooks' part in a rank's checkpoint: onPrepare before the state is
// taken; onContinue after the checkpoint — committed, or aborted once onPrepare
// had run (`aborted`: the program undoes its quiescing either way); onRestart in
// a restarted rank.
import { hostname } from 'node:os';
import { runHooks, type CheckpointResult } from '../../crs/hooks.js';
import { currentPid } from '../../store/record.js';
import type { Session } from './session.js';

export async function prepareHooks(s: Session): Promise<void> {
  s.hooksPrepared = true;
  await s.until(runHooks('prepare', { crs: s.crs, store: s.store, seq: s.seq }));
}

/** The original goes on: `aborted` when no snapshot was committed. Resolves with what safePoint() returns (null when aborted). */
export async function continueHooks(s: Session, aborted: boolean): Promise<CheckpointResult | null> {
  if (aborted && !s.hooksPrepared) return null;
  const host = hostname();
  const pid = currentPid();
  const result: CheckpointResult = {
    state: 'continue',
    crs: s.crs,
    pid,
    previousPid: pid,
    hostname: host,
    previousHostname: host,
    snapshot: { store: s.store, seq: s.seq, dir: s.dir },
    ...(aborted ? { aborted: true } : {}),
  };
  await runHooks('continue', result);
  return aborted ? null : result;
}

export async function restartHooks(result: CheckpointResult): Promise<CheckpointResult> {
  await runHooks('restart', result);
  return result;
}

// How long a CRIU restore may take. A damaged image can leave CRIU's restorer spinning
// in the half-restored task for ever (seen: a truncated pages-1.img restored with
// --no-verify; CRIU 4.2 never answers). The deadline counts CRIU's own time: not the
// time its post-restore stage is held for the snapshot's verification, which grows
// with the snapshot. When it passes, CRIU and what it was restoring are killed.
import { envNumber } from '../../config.js';
import { readStat } from '../../util/procfs.js';
import { signalPid } from '../../util/signals.js';
import type { NotifyHook } from '../types.js';

export class RestoreDeadline {
  readonly ms: number;
  readonly expired: Promise<'expired'>;
  private fire!: () => void;
  private timer: NodeJS.Timeout | undefined;
  private left: number;
  private since = 0;
  private over = false;

  constructor(ms = envNumber('CKPT_RESTORE_TIMEOUT_MS')) {
    this.ms = this.left = ms;
    this.expired = new Promise((resolve) => (this.fire = () => resolve('expired')));
    this.resume();
  }

  /** `hook` (a notify hook), with the deadline stopped while it runs. */
  around(hook: NotifyHook | undefined): NotifyHook | undefined {
    if (!hook) return undefined;
    return async (stage, pid) => {
      this.pause();
      try {
        return await hook(stage, pid);
      } finally {
        this.resume();
      }
    };
  }

  clear(): void {
    this.over = true;
    this.pause();
  }

  private pause(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.left -= performance.now() - this.since;
  }

  private resume(): void {
    if (this.over || this.timer !== undefined) return;
    this.since = performance.now();
    this.timer = setTimeout(this.fire, Math.max(0, this.left));
  }
}

/**
 * Kills a hung restore: CRIU (`criuPid`) and the tasks of `pids` it made — those whose
 * parent is CRIU, this process (a restore as our sibling child), or one of them. Every
 * pid of the snapshot was free before the restore began, so what has it now and
 * descends from CRIU or us is the restore's; anything else is left alone.
 */
export function killRestoring(pids: readonly number[], criuPid: number | undefined): void {
  const makers = new Set([process.pid, ...(criuPid !== undefined ? [criuPid] : [])]);
  const doomed = new Set<number>();
  for (let grew = true; grew; ) {
    grew = false;
    for (const pid of pids) {
      if (pid <= 1 || pid === process.pid || doomed.has(pid)) continue;
      const parent = readStat(pid)?.ppid;
      if (parent !== undefined && (makers.has(parent) || doomed.has(parent))) {
        doomed.add(pid);
        grew = true;
      }
    }
  }
  for (const pid of doomed) signalPid(pid, 'SIGKILL');
  if (criuPid !== undefined && criuPid > 1) signalPid(criuPid, 'SIGKILL');
}

// Bringing a snapshot back: the checkpointer that made it restores it.
import { getCheckpointer } from '../crs/registry.js';
import type { Checkpointer, NotifyHook, RestartedProcess } from '../crs/types.js';
import { beginVerification, isJobSnapshot, isProcessSnapshot, openSnapshot, type Snapshot } from '../store/store.js';
import { restartJob, type RestartJobOptions } from '../runtime/restart.js';
import type { Job } from '../runtime/launcher.js';
import { CkptError, ErrorCodes } from '../errors.js';
import { restartIdentity } from '../store/trust.js';

export interface RestartOptions {
  /** A sequence of the store; default the newest committed one. */
  seq?: number;
  /** Do not wait for the process; its output goes to `logFile`. */
  detach?: boolean;
  logFile?: string;
  /** CRIU snapshots: the restored process's stdout / stderr go to these files (appended). */
  stdoutFile?: string;
  stderrFile?: string;
  /**
   * Check every file's size first and its checksum meanwhile (default true): the
   * restored processes run only once it matched; a damaged snapshot leaves nothing running.
   */
  verify?: boolean;
  onProgress?: (message: string) => void;
  /**
   * Post-copy (CRIU snapshots of a process): the process runs before its memory is
   * read, filled on demand by CRIU's lazy-pages daemon, which it depends on until every
   * page is in. A usage error where it does not apply or this machine cannot do it.
   */
  lazy?: boolean;
  /** Called at each of CRIU's restore stages (pre-restore, post-restore, …); false or a throw aborts. */
  onNotify?: NotifyHook;
  /** For job snapshots: how the restarted job runs (output, periodic checkpoints). */
  job?: RestartJobOptions;
  /**
   * Accept a snapshot written by another user (refused otherwise: ECKPT_SNAPSHOT_OWNER).
   * As root, its program then runs as that user; its process images or job are still refused.
   */
  trustOwner?: boolean;
  /** A program started afresh takes these from the current environment too (store/env.ts). */
  envRefresh?: string[];
}

export interface Restarted {
  snapshot: Snapshot;
  /** For a job: `job` is the restarted job (its coordinator runs in this process). */
  process: RestartedProcess & { job?: Job };
}

/**
 * Restarts a snapshot named by `ref` (a store or a snapshot directory), or one the
 * caller already opened with openSnapshot() (checked then: `seq` and `trustOwner`
 * were applied there; a snapshot not read through its descriptor is opened again).
 */
export async function restartSnapshot(ref: string | Snapshot, options: RestartOptions = {}): Promise<Restarted> {
  const snapshot = typeof ref === 'string' || ref.io === undefined ? openSnapshot(typeof ref === 'string' ? ref : ref.dir, { seq: options.seq, trustOwner: options.trustOwner }) : ref;
  if (isProcessSnapshot(snapshot) && snapshot.manifest.process.isolation) {
    throw new CkptError(ErrorCodes.USAGE, `${snapshot.dir} holds an isolated job: restart it with restartIsolated() or ckpt restart`);
  }
  const component = getCheckpointer(snapshot.manifest.crs.name);
  const runAs = restartIdentity(snapshot.owner, snapshot.dir, isJobSnapshot(snapshot) ? 'job' : component.transparent ? 'images' : 'program');
  if (isJobSnapshot(snapshot) && options.detach) throw new CkptError(ErrorCodes.USAGE, 'a job restarts in the foreground: its coordinator runs in ckpt restart');
  // Before anything starts (CRIU's answer is cached after its first yes).
  const refusal = options.lazy ? await lazyRefused(snapshot, component) : undefined;
  if (refusal) throw refusal;
  // The layout now; the checksums while the restore runs (held until they matched).
  let verification;
  if (options.verify !== false) {
    options.onProgress?.(`verifying ${snapshot.manifest.files.length} files`);
    verification = beginVerification(snapshot);
  }
  if (isJobSnapshot(snapshot)) {
    options.onProgress?.(`restarting job ${snapshot.manifest.job.name} (${snapshot.manifest.job.size} ranks)`);
    const job = await restartJob(snapshot, options.job, verification);
    return {
      snapshot,
      process: {
        pid: globalThis.process.pid,
        job,
        wait: async () => {
          const result = await job.wait();
          return { code: result.status, signal: null, error: result.error };
        },
      },
    };
  }
  if (!isProcessSnapshot(snapshot)) throw new CkptError(ErrorCodes.SNAPSHOT_FORMAT, 'unknown snapshot kind');
  const availability = await component.probe();
  if (!availability.ok) {
    await verification?.done; // a damaged snapshot says so first
    throw new CkptError(availability.code ?? ErrorCodes.CRS_UNAVAILABLE, `snapshot made by '${component.name}', which cannot work here: ${availability.reason}`, {
      hint: availability.hint,
    });
  }
  const process = await component.restart({
    snapshot,
    detach: options.detach ?? false,
    logFile: options.logFile,
    stdoutFile: options.stdoutFile,
    stderrFile: options.stderrFile,
    onProgress: options.onProgress,
    onNotify: options.onNotify,
    runAs,
    envRefresh: options.envRefresh,
    verification,
    lazy: options.lazy === true,
  });
  return { snapshot, process };
}

const lazyRefusal = (why: string) => new CkptError(ErrorCodes.USAGE, `--lazy: ${why}; restart without --lazy`);

/** Why a snapshot cannot be restarted lazily here (a usage error naming the way out), or undefined. */
function lazyRefused(snapshot: Snapshot, component: Checkpointer): Promise<CkptError | undefined> {
  // Refused at once: what does not apply needs no question to CRIU.
  if (isJobSnapshot(snapshot)) throw lazyRefusal('a job of ranks cannot be restored lazily');
  if (!component.lazyRestore) throw lazyRefusal(`a snapshot made by '${component.name}' holds no memory image to restore lazily (only criu's do)`);
  return component.lazyRestore().then(
    (why) => (why ? lazyRefusal(why) : undefined),
    // No CRIU to ask: the probe that follows says so, with its remedy.
    () => undefined,
  );
}

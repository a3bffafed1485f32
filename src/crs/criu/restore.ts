// Restoring a CRIU snapshot: the process comes back with its original pids, its
// stdio rewired to ours (or to a log file), and — in the foreground — as our child,
// so that its exit status is known.
import { closeSync, openSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CriuError, ErrorCodes } from '../../errors.js';
import { CriuSession, criuFailure } from '../../criu/client.js';
import { ReqType, type InheritFd } from '../../criu/schema.js';
import { mkdirPrivate, PRIVATE_FILE_MODE } from '../../util/fsx.js';
import { native } from '../../util/native.js';
import { logsDir } from '../../util/paths.js';
import { markSucceeded, pruneWhileRestoring } from '../../util/restore-logs.js';
import { readStat } from '../../util/procfs.js';
import { isAlive } from '../../util/signals.js';
import type { NotifyHook, ProcessExit, RestartedProcess, RestartRequest } from '../types.js';
import type { NetworkLockName } from '../../store/manifest.js';
import { assertHasImages, criuLogLevel, IMAGES_DIR, networkLockMethod, RESTORE_LOG, sharedOptions } from './options.js';
import { snapshotPath } from '../../store/store.js';
import { euid } from '../../store/trust.js';
import { badSizeError, fileInheritance, openForAppend, type OutputOverrides } from './files.js';
import { HOLD_STAGE, holdUntilVerified, restoreError } from './verified-restore.js';
import { faultPoint } from '../../util/faults.js';
import { guardTree, LazyPagesDaemon } from './lazy-pages.js';
import { killRestoring, RestoreDeadline } from './restore-deadline.js';
import { ourChildren, reapKilledChildren, waitForPids, whilePidsSettle } from './restore-pids.js';
import type { Verification } from '../../store/store.js';

const SIGNAL_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(constants.signals).map(([name, no]) => [no, name]),
);

/** Pipes and sockets in the old stdio are recreated from ours through CRIU's inherit-fd. */
function stdioInheritance(stdio: (string | null)[]): { keys: InheritFd[]; ourFds: number[] } {
  const keys: InheritFd[] = [];
  const ourFds: number[] = [];
  stdio.slice(0, 3).forEach((target, i) => {
    if (!target || !/^(pipe|socket):\[\d+\]$/.test(target)) return;
    if (keys.some((k) => k.key === target)) return; // 2>&1: one pipe, inherited once
    // Our fd i is handed to criu as its fd 4 + position.
    keys.push({ key: target, fd: 4 + ourFds.length });
    ourFds.push(i);
  });
  return { keys, ourFds };
}

export async function restoreWithCriu(request: RestartRequest, criuPath: string): Promise<RestartedProcess> {
  const tree = request.snapshot.manifest.process.tree;
  const children = ourChildren(tree);
  try {
    await waitForPids(tree);
    return await whilePidsSettle(() => restoreOnce(request, criuPath));
  } catch (err) {
    await reapKilledChildren(tree.filter((pid) => !children.includes(pid)));
    throw await restoreError(request.verification, err as Error);
  }
}

async function restoreOnce(request: RestartRequest, criuPath: string): Promise<RestartedProcess> {
  const { snapshot } = request;
  const record = snapshot.manifest.process;
  assertHasImages(snapshot.manifest.files, snapshot.dir);

  const logDir = join(logsDir(), `restore-${snapshot.seq}-${Date.now()}-${process.pid}`);
  mkdirPrivate(logDir);
  const logPath = join(logDir, RESTORE_LOG);
  const workDirFd = openSync(logDir, 'r');
  const opened: number[] = [workDirFd];
  let daemon: LazyPagesDaemon | undefined;
  try {
    const overrides: OutputOverrides = {
      stdout: request.stdoutFile ?? request.logFile,
      stderr: request.stderrFile ?? request.logFile,
    };
    const { keys, ourFds: stdioSlots } = stdioInheritance(record.stdio);
    // Pipes and sockets on stdio: ours, or a file (--stdout/--stderr/--log), or —
    // detached — a log file instead of our (soon closed) stdio.
    let detachedOut: number | undefined;
    let nul: number | undefined;
    const ourFds = stdioSlots.map((i) => {
      const file = i === 1 ? overrides.stdout : i === 2 ? overrides.stderr : undefined;
      if (file) {
        const fd = openForAppend(file, i === 1 ? 'stdout' : 'stderr');
        opened.push(fd);
        return fd;
      }
      if (!request.detach) return i;
      if (i === 0) {
        if (nul === undefined) opened.push((nul = openSync('/dev/null', 'r')));
        return nul;
      }
      if (detachedOut === undefined) opened.push((detachedOut = openSync(join(logDir, 'output.log'), 'a', PRIVATE_FILE_MODE)));
      return detachedOut;
    });
    // Regular files it wrote (stdout to a file…): appended to at their current end.
    // Root restoring another user's process: its files opened as that user (open-as.ts).
    const files = await fileInheritance(record.files ?? [], record.pid, overrides, euid() === 0 && record.uid !== 0 ? record.uid : undefined);
    opened.push(...files.opened);
    for (const f of files.files) {
      keys.push({ key: f.key, fd: 4 + ourFds.length });
      ourFds.push(f.fd);
    }
    if (files.files.length) request.onProgress?.(`appending to ${files.files.map((f) => f.path).join(', ')}`);
    const imagesDir = snapshotPath(snapshot, IMAGES_DIR);
    const session = CriuSession.open({ criuPath, passFds: ourFds });
    const deadline = new RestoreDeadline();
    // Restored while the checksums are computed: held at post-restore until they matched.
    // (Tests stand at `restored` there, a lazy tree verified and its daemon running.)
    const onNotify = holdUntilVerified(request.verification, request.lazy ? atRestored(request.onNotify) : request.onNotify);
    let resp;
    try {
      if (request.lazy) {
        // Listening in the restore's own work directory before the restore connects to
        // it (the restore's criu starts meanwhile: it waits for its request).
        request.onProgress?.("starting CRIU's lazy-pages daemon");
        daemon = await LazyPagesDaemon.start(criuPath, imagesDir, logDir);
      }
      request.onProgress?.(request.lazy ? 'restoring with CRIU (memory on demand)' : 'restoring with CRIU');
      // The request is sent before call() first waits: CRIU works from here on.
      const answered = session.call({
        type: ReqType.RESTORE,
        opts: {
          ...sharedOptions(record),
          imagesDir,
          workDirFd,
          ...(request.lazy ? { lazyPages: true } : {}),
          logFile: RESTORE_LOG,
          inheritFd: keys,
          // In the foreground the restored root becomes our child: we can wait for it.
          rstSibling: !request.detach,
          notifyScripts: onNotify !== undefined,
        },
      }, deadline.around(onNotify));
      // Housekeeping beside CRIU's work (not waited for: it ends before this process does).
      void pruneWhileRestoring();
      resp = await withinDeadline(answered, deadline, record.tree, session, logPath);
    } finally {
      deadline.clear();
      session.close();
    }
    if (!resp?.success) {
      const err = criuFailure('CRIU restore', resp, logPath, session.stderrText);
      if (err.criuErrors.some((l) => /File exists/.test(l)) || resp?.crErrno === 17) {
        throw new CriuError(ErrorCodes.PID_TAKEN, `${err.message}: a pid of the snapshot is taken`, {
          cause: err,
          logPath,
          criuErrors: err.criuErrors,
          hint: 'stop the process holding it, or restore in a new PID namespace',
        });
      }
      throw badSizeError(err) ?? err;
    }
    // A failed restore can name pid -1; never treat anything at or below 1 as ours.
    const pid = resp.restore?.pid ?? 0;
    if (pid <= 1) throw criuFailure('CRIU restore', resp, logPath, 'CRIU reported no restored pid');
    await session.exited();
    // The daemon writes its log here until it ends: the folder stays while it runs.
    markSucceeded(logDir, daemon ? [pid, daemon.pid] : [pid]);
    daemon?.unlinkSocket();
    // In the foreground a daemon that fails before every page is in takes the tree with
    // it: its missing pages would read as zeros. (Detached, nothing watches it.)
    const guard = daemon && !request.detach ? guardTree(daemon, pid) : undefined;
    return {
      pid,
      ...(daemon ? { lazyPages: { pid: daemon.pid, log: daemon.logPath } } : {}),
      wait: request.detach ? () => pollExit(pid) : async () => {
        const exit = await reap(pid);
        const error = await guard?.reaped();
        return error ? { ...exit, error } : exit;
      },
    };
  } catch (err) {
    // Nothing was released (CRIU killed the tree): the daemon goes too, with its socket.
    await daemon?.stop();
    throw err;
  } finally {
    for (const fd of opened) closeSync(fd);
  }
}

/** CRIU's answer, or — past the deadline — CRIU and what it was restoring killed, and ECKPT_TIMEOUT. */
async function withinDeadline<T>(answered: Promise<T>, deadline: RestoreDeadline, pids: readonly number[], session: CriuSession, logPath: string): Promise<T> {
  answered.catch(() => {});
  const first = await Promise.race([answered, deadline.expired]);
  if (first !== 'expired') return first as T;
  killRestoring(pids, session.pid);
  throw new CriuError(ErrorCodes.TIMEOUT, `CRIU restore did not finish within ${deadline.ms} ms; it and what it restored were killed`, {
    logPath,
    criuErrors: [],
    hint: `damaged images can do this: ckpt snapshots verify; CKPT_RESTORE_TIMEOUT_MS sets the limit`,
  });
}

/** The caller's hook, after the `restored` fault point at the hold stage. */
function atRestored(hook: NotifyHook | undefined): NotifyHook {
  return async (stage, pid) => {
    if (stage === HOLD_STAGE) await faultPoint('restored', 'coord');
    return hook?.(stage, pid);
  };
}

async function reap(pid: number): Promise<ProcessExit> {
  const status = await native().waitpid(pid);
  return { code: status.code, signal: status.signal === null ? null : (SIGNAL_NAMES[status.signal] ?? String(status.signal)) };
}

async function pollExit(pid: number): Promise<ProcessExit> {
  while (isAlive(pid) && readStat(pid)?.state !== 'Z') await sleep(100);
  return { code: null, signal: null };
}

export interface RankRestoreRequest {
  /** The rank's CRIU images. */
  imagesDir: string;
  /** Every pid of the dumped tree: each must be free (a zombie is waited for). */
  pids: number[];
  /** Files of the image replaced by our fds: `pipe:[ino]`/`socket:[ino]` → fd in this process. */
  inherit: { key: string; fd: number }[];
  shellJob?: boolean;
  /** As recorded at the dump (absent in older snapshots: nftables). */
  networkLock?: NetworkLockName;
  /** Where CRIU's restore log goes. */
  logDir: string;
  /** The snapshot's checksums, being verified: the rank is held at post-restore until they matched. */
  verification?: Verification;
}

/**
 * Restores one rank of a job snapshot as our child (rst_sibling): the caller
 * reaps it (native waitpid) to learn its exit status. Returns its pid (> 1).
 */
export async function restoreJobRank(request: RankRestoreRequest, criuPath: string): Promise<number> {
  const children = ourChildren(request.pids);
  try {
    await waitForPids(request.pids);
    return await whilePidsSettle(() => restoreRankOnce(request, criuPath));
  } catch (err) {
    await reapKilledChildren(request.pids.filter((pid) => !children.includes(pid)));
    throw await restoreError(request.verification, err as Error);
  }
}

async function restoreRankOnce(request: RankRestoreRequest, criuPath: string): Promise<number> {
  mkdirPrivate(request.logDir);
  const logPath = join(request.logDir, RESTORE_LOG);
  const workDirFd = openSync(request.logDir, 'r');
  try {
    const session = CriuSession.open({ criuPath, passFds: request.inherit.map((i) => i.fd) });
    const onNotify = holdUntilVerified(request.verification);
    const deadline = new RestoreDeadline();
    let resp;
    try {
      const answered = session.call({
        type: ReqType.RESTORE,
        opts: {
          shellJob: request.shellJob ?? false,
          tcpEstablished: false,
          fileLocks: true,
          networkLock: networkLockMethod(request.networkLock),
          logLevel: criuLogLevel(),
          imagesDir: request.imagesDir,
          workDirFd,
          logFile: RESTORE_LOG,
          // Our fds were handed to criu as its fds 4, 5, …
          inheritFd: request.inherit.map((i, n) => ({ key: i.key, fd: 4 + n })),
          rstSibling: true,
          notifyScripts: onNotify !== undefined,
        },
      }, deadline.around(onNotify));
      resp = await withinDeadline(answered, deadline, request.pids, session, logPath);
    } finally {
      deadline.clear();
      session.close();
    }
    if (!resp?.success) {
      const err = criuFailure('CRIU restore', resp, logPath, session.stderrText);
      if (err.criuErrors.some((l) => /File exists/.test(l)) || resp?.crErrno === 17) {
        throw new CriuError(ErrorCodes.PID_TAKEN, `${err.message}: a pid of the snapshot is taken`, { cause: err, logPath, criuErrors: err.criuErrors });
      }
      throw err;
    }
    // A failed restore can name pid -1; never treat anything at or below 1 as ours.
    const pid = resp.restore?.pid ?? 0;
    if (pid <= 1) throw criuFailure('CRIU restore', resp, logPath, 'CRIU reported no restored pid');
    await session.exited();
    return pid;
  } finally {
    closeSync(workDirFd);
  }
}

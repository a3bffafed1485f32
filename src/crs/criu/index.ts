// The `criu` checkpointer: transparent dumps through CRIU's RPC. A process that
// checkpoints itself learns whether it continued or was restored from CRIU's
// `restored` flag, which CRIU writes into the restored copy of its RPC socket.
import { closeSync, copyFileSync, mkdtempSync, openSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { CkptError, CriuError, ErrorCodes, interruption, throwIfInterrupted } from '../../errors.js';
import { faultPoint } from '../../util/faults.js';
import { CriuSession, criuFailure, type NotifyHandler } from '../../criu/client.js';
import { processTree } from '../../util/procfs.js';
import { signalPid } from '../../util/signals.js';
import { findCriu } from '../../criu/locate/find.js';
import { privileges, probeCriu } from '../../criu/locate/probe.js';
import type { CriuInfo } from '../../criu/locate/qualify.js';
import { ReqType, type CriuOpts } from '../../criu/schema.js';
import { mkdirPrivate } from '../../util/fsx.js';
import { native } from '../../util/native.js';
import { logsDir } from '../../util/paths.js';
import type { Availability, Checkpointer, PreparedCheckpoint, ProcessCheckpointRequest, SelfCheckpointRequest } from '../types.js';
import type { ProcessRecord } from '../../store/manifest.js';
import { lockTableLeftover } from './leftovers.js';
import { ensureOwnSession, sessionError, sessionLedFromOutside } from './session-leader.js';
import { writableFiles } from './files.js';
import { dumpOptions, networkFacts, IMAGES_DIR, DUMP_LOG } from './options.js';
import { dumpRunId } from '../../criu/images.js';
import { removeLockTable } from '../../criu/lock-table.js';
import { PID_RLIMIT_REMEDY, rlimitFailure } from '../../criu/rlimit.js';

let located: Promise<CriuInfo> | undefined;

/** The CRIU binary to use, found once per process. */
export function criuBinary(): Promise<CriuInfo> {
  located ??= findCriu().catch((err: unknown) => {
    located = undefined;
    throw err;
  });
  return located;
}

/**
 * Root (or CAP_SYS_ADMIN): what whole-tree work in fresh namespaces needs (isolate/).
 * The criu checkpointer itself also serves other users, through CRIU's unprivileged
 * mode and a binary with file capabilities: findCriu() says what is missing.
 */
export function requirePrivileges(): void {
  const p = privileges();
  if (!p.root && !p.capSysAdmin) {
    throw new CkptError(ErrorCodes.PERMISSION, 'CRIU needs root (or CAP_SYS_ADMIN) to checkpoint and restore', {
      hint: 'run ckpt as root, or use --crs self',
    });
  }
}

/**
 * The dump log lives in the snapshot being written (or in a work directory), which
 * a failed dump removes: a copy in ckpt's logs directory is what the error points to.
 */
function keepDumpLog(log: string): string {
  try {
    const dir = logsDir();
    mkdirPrivate(dir);
    const kept = join(dir, `dump-${Date.now()}-${process.pid}.log`);
    copyFileSync(log, kept);
    return kept;
  } catch {
    return log;
  }
}

const ENOSPC = 28;

/**
 * Whether the images' file system is (all but) full. CRIU's log lives there too:
 * when the disk fills up, the log stops before the reason, so this is often the
 * only sign.
 */
function fileSystemFull(dir: string): boolean {
  try {
    const fs = statfsSync(dir);
    return fs.bavail * fs.bsize < 1 << 20;
  } catch {
    return false;
  }
}

/**
 * Runs one DUMP. CRIU's log is `images/dump.log`, unless `workDir` (a directory
 * outside the snapshot) holds it: a failure's log is then already where it stays.
 */
async function dump(
  opts: CriuOpts,
  imagesDir: string,
  outsideTree: boolean,
  onNotify?: NotifyHandler,
  workDir?: string,
  onSuccess?: { fd: number; bytes: Uint8Array },
  started?: CriuSession,
) {
  const session = started ?? CriuSession.open({ criuPath: (await criuBinary()).path, outsideTree, onSuccess });
  // CRIU resolves work_dir_fd in our fd table (/proc/<client>/fd/N).
  const workDirFd = workDir === undefined ? undefined : openSync(workDir, 'r');
  try {
    const resp = await session.call({ type: ReqType.DUMP, opts: workDirFd === undefined ? opts : { ...opts, workDirFd } }, onNotify);
    // A process that dumped itself and stayed frozen gets no answer (CRIU sends one only
    // to a caller that keeps running): woken, it finds the connection closed.
    if (resp === null && onSuccess) return null;
    if (!resp?.success) {
      const log = join(workDir ?? imagesDir, DUMP_LOG);
      const err = criuFailure('CRIU dump', resp, log, session.stderrText);
      const logPath = keepDumpLog(log);
      // A child that kept a session led from outside its pid namespace.
      const leader = err.criuErrors.map((l) => /A session leader of (\d+)\(/.exec(l)).find(Boolean);
      if (leader) throw sessionError(Number(leader[1]), new CriuError(err.code, err.message, { cause: err, logPath, criuErrors: err.criuErrors }));
      // Another user's process, and no CAP_SYS_RESOURCE: one line with the way out.
      const rlimit = rlimitFailure('CRIU dump', err.criuErrors, logPath, PID_RLIMIT_REMEDY);
      if (rlimit) throw new CriuError(err.code, rlimit.message, { cause: err, logPath, criuErrors: err.criuErrors, hint: rlimit.hint });
      const full =
        resp?.crErrno === ENOSPC || err.criuErrors.some((l) => /No space left on device|Disk quota exceeded/.test(l)) || fileSystemFull(imagesDir);
      throw new CriuError(full ? ErrorCodes.NO_SPACE : err.code, full ? `${err.message}: the snapshot's file system is full` : err.message, {
        cause: err,
        logPath,
        criuErrors: err.criuErrors,
        hint: `CRIU's log: ${logPath}`,
        details: { crErrno: resp?.crErrno },
      });
    }
    return resp;
  } finally {
    session.close();
    if (workDirFd !== undefined) closeSync(workDirFd);
  }
}

/**
 * A CRIU worker (swrk) started ahead of a dump of another process: CRIU's exec and
 * start-up (~10–30 ms) run while the caller checks the tree and opens the store.
 * It waits for its one request; closed unused, it exits.
 */
class StartedWorker implements PreparedCheckpoint {
  constructor(private session: CriuSession | undefined) {}

  /** The session, once: its taker closes it. */
  take(): CriuSession | undefined {
    const s = this.session;
    this.session = undefined;
    return s;
  }

  dispose(): void {
    this.take()?.close();
  }
}

export const criuCheckpointer: Checkpointer = {
  name: 'criu',
  priority: 30,
  transparent: true,
  prepareRemoval: lockTableLeftover,

  async probe(): Promise<Availability> {
    const report = await probeCriu();
    if (!report.ok) {
      const code = Object.values(ErrorCodes).find((c) => c === report.code);
      return { ok: false, reason: report.reason, hint: report.hint, code, details: { ...report } };
    }
    // A user other than root: the CRIU found passed `criu check --unprivileged` and
    // holds the file capabilities it needs (locate.ts); CRIU then reaches only the
    // caller's own processes.
    const unprivileged = !report.privileges.root;
    try {
      native();
    } catch (err) {
      return { ok: false, reason: (err as Error).message, hint: (err as CkptError).hint };
    }
    return { ok: true, version: report.version, details: { path: report.path, source: report.source, unprivileged } };
  },

  async checkpointSelf(request: SelfCheckpointRequest) {
    ensureOwnSession(request.record, request.onProgress);
    Object.assign(request.record, networkFacts(processTree(request.record.pid)));
    request.record.files = writableFiles(processTree(request.record.pid)).filter((f) => !f.path.startsWith(`${request.pending.path}/`));
    const images = join(request.pending.dir, IMAGES_DIR);
    mkdirPrivate(images);
    request.onProgress?.('dumping this process with CRIU');
    // criu is started outside our tree: CRIU refuses to dump a tree that contains itself.
    const resp = await dump({ ...dumpOptions(request.record, images), leaveRunning: true }, images, true);
    const { version } = await criuBinary();
    return {
      state: resp?.dump?.restored ? 'restart' : 'continue',
      data: { criu: `${version.major}.${version.minor}.${version.sublevel}`, images: IMAGES_DIR },
    };
  },

  async prepareProcessCheckpoint() {
    return new StartedWorker(CriuSession.open({ criuPath: (await criuBinary()).path }));
  },

  async checkpointProcess(request: ProcessCheckpointRequest) {
    const started = request.prepared instanceof StartedWorker ? request.prepared.take() : undefined;
    try {
      return await checkpointTree(request, started);
    } finally {
      started?.close(); // unused (a refusal before the dump); else closed already
    }
  },

  async restart(request) {
    // Loaded on demand: a checkpoint (the common CLI call) need not compile the restore path.
    const { restoreWithCriu } = await import('./restore.js');
    return restoreWithCriu(request, (await criuBinary()).path);
  },

  async lazyRestore() {
    const { lazyPagesUnsupported } = await import('./lazy-pages.js');
    return lazyPagesUnsupported((await criuBinary()).path);
  },
};

/** Dumps another process tree (checkpointProcess), in `started` when a worker was started ahead. */
async function checkpointTree(request: ProcessCheckpointRequest, started: CriuSession | undefined): Promise<{ data: Record<string, unknown> }> {
  throwIfInterrupted(request.signal);
  const outside = sessionLedFromOutside(request.record.tree.length ? request.record.tree : [request.pid]);
  if (outside !== undefined) throw sessionError(outside);
  Object.assign(request.record, networkFacts(processTree(request.pid)));
  const images = join(request.pending.dir, IMAGES_DIR);
  mkdirPrivate(images);
  const { version } = await criuBinary();
  const data = { criu: `${version.major}.${version.minor}.${version.sublevel}`, images: IMAGES_DIR };
  request.onProgress?.(`dumping process tree ${request.pid} with CRIU`);
  // CRIU's leave-stopped keeps TCP sockets in repair mode and the network locked:
  // right before a kill, but a tree that is to be continued (--stop, then resume)
  // would find its connections dead. Such a tree is left running by CRIU, which
  // unlocks both, with a SIGSTOP already queued while it was still frozen.
  const stopAfter = request.leave === 'stopped' && !request.thenKill;
  // A tree to be killed is committed while CRIU still holds it frozen (post-dump) and
  // then killed by CRIU itself, connections still in repair mode and locked, as a
  // restore needs them. A failed commit makes CRIU roll back instead: it takes the
  // sockets out of repair mode, unlocks the network and lets the tree run on —
  // which no one but CRIU can do once it has exited (it holds the repair sockets).
  const commitFrozen = request.thenKill && request.leave === 'stopped' ? request.commitFrozen : undefined;
  const opts: CriuOpts = {
    ...dumpOptions(request.record, images),
    pid: request.pid,
    // Neither flag: CRIU kills the tree once post-dump (the commit) succeeded.
    leaveRunning: request.leave === 'running' || stopAfter,
    leaveStopped: request.leave === 'stopped' && !stopAfter && !commitFrozen,
    notifyScripts: true,
  };
  // CRIU writes its log after post-dump too: with the commit there, the log lives
  // outside the snapshot (a copy as of post-dump goes in), or it would no longer
  // match its checksum.
  let workDir: string | undefined;
  if (commitFrozen) {
    mkdirPrivate(logsDir());
    workDir = mkdtempSync(join(logsDir(), `dump-${request.pid}-`));
  }
  let committed = false;
  let commitError: unknown;
  // While CRIU holds the tree frozen (post-dump), its pids are exactly those in
  // the images: the restore must find each of them free.
  const onNotify: NotifyHandler = async (script, pid) => {
    if (script === 'post-dump') {
      // Tests stand here: the images are written, the tree still frozen.
      await faultPoint('written', 'coord');
      request.record.tree = processTree(request.pid);
      // Files it writes may grow after the dump: the restore appends to them.
      request.record.files = writableFiles(request.record.tree);
    }
    // Interrupted: CRIU has no way to be stopped mid-write that leaves the tree whole
    // (a signal can kill it with its parasite still inside the tree); refusing its next
    // stage makes it roll back — parasite out, network unlocked, the tree running on.
    if (request.signal?.aborted) return false;
    if (script === 'post-dump' && stopAfter) for (const pid of request.record.tree) signalPid(pid, 'SIGSTOP');
    else if (script === 'pre-dump') request.onProgress?.('tree frozen, writing images');
    const ok = await request.onNotify?.(script, pid);
    if (ok === false || script !== 'post-dump' || !commitFrozen) return ok;
    try {
      copyFileSync(join(workDir!, DUMP_LOG), join(images, DUMP_LOG));
    } catch {
      // a full disk: the commit says so
    }
    try {
      await commitFrozen(data);
      committed = true;
    } catch (err) {
      commitError = err;
      request.onProgress?.('the commit failed: CRIU lets the process run on, connections unlocked');
      return false;
    }
  };
  try {
    await dump(opts, images, false, onNotify, workDir, undefined, started);
  } catch (err) {
    // A failed dump's log was copied to the logs directory; a successful one's into the snapshot.
    if (workDir) rmSync(workDir, { recursive: true, force: true });
    // CRIU unlocks the network itself when a dump fails; a table of this run left anyway goes.
    if (request.record.networkLock !== 'skip') await removeLockTable(dumpRunId(images));
    if (commitError !== undefined) throw commitError;
    if (committed) {
      // The snapshot is whole, but CRIU failed after it (the tree may be running on
      // unlocked): the snapshot stands, the tree is ended as asked.
      request.onProgress?.(`CRIU failed after the commit (${(err as Error).message}); killing the tree`);
      for (const pid of request.record.tree) signalPid(pid, 'SIGKILL');
      return { data };
    }
    if (request.signal?.aborted) throw interruption(request.signal, err);
    if (err instanceof CriuError && err.criuErrors.some((l) => /half of stream unix connection|External socket/.test(l))) {
      throw new CriuError(err.code, err.message, {
        cause: err,
        logPath: err.logPath,
        criuErrors: err.criuErrors,
        hint: 'the process holds a unix socket to a process outside its tree; checkpoint the whole tree (ckpt run --isolate)',
      });
    }
    throw err;
  }
  // Success: the snapshot holds its copy of the log.
  if (workDir) rmSync(workDir, { recursive: true, force: true });
  return { data };
}

/**
 * A rank of a coordinated job dumps itself (and its children), leaving them
 * running. The caller has closed every connection to the outside first (peer
 * links; the coordinator unless kept: `control`); stdio and that one lead out,
 * declared external. Resolves `restored: true` in the copy a restart brought back.
 */
export async function dumpJobRank(
  imagesDir: string,
  record: Pick<ProcessRecord, 'stdio' | 'shellJob'>,
  stopped?: { fd: number; bytes: Uint8Array },
  control?: string,
): Promise<{ restored: boolean; criu: string; woken?: boolean }> {
  mkdirPrivate(imagesDir);
  // Its peer connections are closed: no TCP connection to protect, no lock. `control`
  // (`socket:[ino]`): its unix connection to the coordinator, kept open, external.
  const base = dumpOptions({ ...record, tcpEstablished: false, networkLock: 'skip' }, imagesDir, control);
  // `stopped`: the checkpoint ends the job. The rank stays frozen after the dump (so
  // none of its code runs past its snapshot) until it is killed after the commit — or
  // continued (SIGCONT) if the commit failed. It cannot report the dump itself: once
  // CRIU has exited with success, the shell that started it writes `bytes` to `fd`.
  const opts: CriuOpts = stopped ? { ...base, leaveStopped: true } : { ...base, leaveRunning: true };
  const resp = await dump(opts, imagesDir, true, undefined, undefined, stopped);
  const { version } = await criuBinary();
  const criu = `${version.major}.${version.minor}.${version.sublevel}`;
  // No answer: this is the original, frozen after its dump and then continued.
  if (resp === null) return { restored: false, criu, woken: true };
  return { restored: resp.dump?.restored === true, criu };
}

// checkpointIsolatedJob(): `ckpt checkpoint JOB` for an isolated job — CRIU dumps
// the whole tree from the job's pid 1, with its namespaces, established TCP
// connections (the job's network locked by nftables meanwhile), data in flight in
// pipes and sockets, and the contents of its private tmpfs mounts.
import { copyFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { CriuError, ErrorCodes, interruption, JobError, throwIfInterrupted } from '../errors.js';
import { CriuSession, criuFailure } from '../criu/client.js';
import { dumpRunId, readDumpStats, type DumpStats } from '../criu/images.js';
import { NetworkLock, ReqType, type CriuOpts } from '../criu/schema.js';
import { criuBinary, requirePrivileges } from '../crs/criu/index.js';
import { criuLogLevel, DUMP_LOG, IMAGES_DIR } from '../crs/criu/options.js';
import { processManifestDraft, type EndState, type ProcessRecord } from '../store/manifest.js';
import { abortSnapshot, beginSnapshot, commitSnapshot, type Snapshot } from '../store/store.js';
import type { JobRecord } from '../registry/jobs.js';
import { writeJob } from '../registry/jobs.js';
import { mkdirPrivate } from '../util/fsx.js';
import { logsDir, stateDir } from '../util/paths.js';
import { fdTarget, processTree } from '../util/procfs.js';
import { signalPid } from '../util/signals.js';
import { removeLockTable } from './cleanup.js';
import { findIsolatedJob, isolatedRootAlive } from './job.js';
import { IO_EXTERNAL_KEY, IO_MOUNT } from './namespace-init.js';
import { dumpMountExternals } from './mounts.js';
import { inUserns, ISOLATE_RLIMIT_REMEDY, rlimitFailure } from './userns.js';

export interface IsolatedCheckpointOptions {
  /** Job id, id prefix or name. */
  job: string;
  /** The snapshot store (default `<state>/snapshots/<job name>`). */
  dir?: string;
  /** continue (default): left running; stop: left stopped; terminate: killed once the snapshot is committed. */
  then?: EndState;
  onProgress?: (message: string) => void;
  /** Aborted before the commit: CRIU rolls the dump back at its next stage, the job runs on, InterruptedError. */
  signal?: AbortSignal;
}

export interface IsolatedCheckpoint {
  snapshot: Snapshot;
  job: JobRecord;
  /** CRIU's own figures for this dump (freeze time etc.). */
  stats?: DumpStats;
  /** Image bytes. */
  bytes: number;
  /** Processes dumped. */
  processes: number;
  /** How long the CRIU dump itself took (ms), without committing the snapshot. */
  dumpMs: number;
}

/** Where `ckpt checkpoint JOB` stores snapshots without --dir. */
export function defaultStore(job: JobRecord): string {
  return join(stateDir(), 'snapshots', job.name.replace(/[^\w.-]/g, '_') || job.id);
}

/** CRIU options every dump of an isolated job uses (the restore repeats the relevant ones). */
export function isolatedDumpOptions(rootPid: number, imagesDir: string, then: EndState, hostMounts: string[] = []): CriuOpts {
  return {
    pid: rootPid,
    imagesDir,
    logFile: DUMP_LOG,
    logLevel: criuLogLevel(),
    leaveRunning: then === 'continue',
    leaveStopped: then !== 'continue',
    tcpEstablished: true,
    fileLocks: true,
    // No iptables on these machines: nftables locks the network during the dump.
    networkLock: NetworkLock.NFTABLES,
    // The output directory is the launcher's, not the job's: a restore maps it anew.
    // In a user namespace, host mounts that cannot be mounted there anew are external too.
    external: [`mnt[${IO_MOUNT}]:${IO_EXTERNAL_KEY}`, ...hostMounts],
    notifyScripts: true,
  };
}

/** A hint for the causes of a failed dump that users can do something about. */
export function dumpHint(errors: string[], logPath: string): string {
  const text = errors.join('\n');
  if (/io_uring/.test(text)) return 'a process uses io_uring, which CRIU cannot dump (for Node: UV_USE_IO_URING=0)';
  if (/External socket|half of stream unix connection/.test(text)) {
    return 'a process holds a unix socket to a process outside the job; start everything it talks to inside the job';
  }
  if (/Can't lookup mount|proper root mount|Unknown mount/.test(text)) {
    return 'a process uses a file or mount from outside the job; open files inside the job';
  }
  if (/already (being )?(traced|seized)|ptrace/i.test(text)) return 'another checkpoint of this job may be running';
  return `CRIU's log: ${logPath}`;
}

/** A schedule as the job's registry record holds it (a file of ours, checked all the same). */
function validSchedule(s: { intervalMs: number; keep?: number } | undefined): boolean {
  return s !== undefined && Number.isSafeInteger(s.intervalMs) && s.intervalMs >= 1 && (s.keep === undefined || (Number.isSafeInteger(s.keep) && s.keep >= 1));
}

function recordOfJob(job: JobRecord & { isolated: NonNullable<JobRecord['isolated']> }): ProcessRecord {
  const root = job.isolated.rootPid;
  let cwd = '/';
  try {
    cwd = readlinkSync(`/proc/${root}/cwd`);
  } catch {
    // gone: the dump will say so
  }
  return {
    pid: root,
    tree: processTree(root),
    argv: job.command.length ? job.command : ['?'],
    cwd,
    // The environment stays in the images; none is needed to start anything afresh.
    env: {},
    stdio: [0, 1, 2].map((fd) => fdTarget(root, fd) ?? null),
    shellJob: false,
    tcpEstablished: true,
    uid: process.geteuid?.() ?? 0,
    isolation: {
      name: job.name,
      net: job.isolated.net,
      ioMount: IO_MOUNT,
      ioKey: IO_EXTERNAL_KEY,
      ...(validSchedule(job.isolated.schedule) ? { schedule: job.isolated.schedule } : {}),
    },
  };
}

export async function checkpointIsolatedJob(options: IsolatedCheckpointOptions): Promise<IsolatedCheckpoint> {
  const then = options.then ?? 'continue';
  const job = findIsolatedJob(options.job);
  if (!isolatedRootAlive(job)) throw new JobError(ErrorCodes.JOB_NOT_FOUND, `isolated job ${job.id} has already exited`);
  requirePrivileges();
  const criu = await criuBinary();
  const root = job.isolated.rootPid;
  const record = recordOfJob(job);
  throwIfInterrupted(options.signal);
  const createdAt = new Date().toISOString();
  const pending = beginSnapshot(options.dir ?? defaultStore(job));
  const images = join(pending.dir, IMAGES_DIR);
  mkdirPrivate(images);

  options.onProgress?.(`dumping isolated job ${job.id} (${record.tree.length} processes) with CRIU`);
  const dumpStart = Date.now();
  const session = CriuSession.open({ criuPath: criu.path });
  let resp;
  try {
    const hostMounts = inUserns(root) ? dumpMountExternals(root, job.isolated.net) : [];
    resp = await session.call({ type: ReqType.DUMP, opts: isolatedDumpOptions(root, images, then, hostMounts) }, (script) => {
      // While CRIU holds the tree frozen, its pids are exactly those in the images.
      if (script === 'post-dump') record.tree = processTree(root);
      // Interrupted: refusing a stage makes CRIU roll back and let the job run on.
      return options.signal?.aborted !== true;
    });
  } finally {
    session.close();
    await session.exited();
  }
  if (!resp?.success) {
    // Keep the log: the snapshot directory holding it is about to go.
    const logDir = join(logsDir(), `dump-${job.id}-${Date.now()}`);
    mkdirPrivate(logDir);
    const logPath = join(logDir, DUMP_LOG);
    try {
      copyFileSync(join(images, DUMP_LOG), logPath);
    } catch {
      // no log written
    }
    const err = criuFailure('CRIU dump of the isolated job', resp, logPath, session.stderrText);
    // CRIU unlocks the network itself on failure; a table of this run left anyway goes.
    const runId = dumpRunId(images);
    await removeLockTable(runId);
    if (job.isolated.net && isolatedRootAlive(job)) await removeLockTable(runId, root);
    abortSnapshot(pending);
    if (options.signal?.aborted) throw interruption(options.signal, err);
    // Another user's process without CAP_SYS_RESOURCE (a job started without its user namespace).
    const rlimit = rlimitFailure('CRIU dump of the isolated job', err.criuErrors, logPath, ISOLATE_RLIMIT_REMEDY);
    throw new CriuError(err.code, rlimit?.message ?? err.message, {
      cause: err,
      logPath,
      criuErrors: err.criuErrors,
      hint: rlimit?.hint ?? dumpHint(err.criuErrors, logPath),
      details: rlimit ? { pid: rlimit.pid, uid: rlimit.uid } : undefined,
    });
  }

  const dumpMs = Date.now() - dumpStart;
  const runId = dumpRunId(images);
  if (runId) record.isolation!.dumpRunId = runId;
  const stats = readDumpStats(images);
  let snapshot: Snapshot;
  try {
    options.onProgress?.('committing the snapshot');
    snapshot = await commitSnapshot(
      pending,
      processManifestDraft({ createdAt, crs: { name: 'criu', version: `${criu.version.major}.${criu.version.minor}.${criu.version.sublevel}` }, endState: then, origin: 'external', process: record, data: { images: IMAGES_DIR, isolated: true, job: job.id } }),
      { onProgress: options.onProgress, signal: options.signal },
    );
  } catch (err) {
    abortSnapshot(pending);
    if (then !== 'continue') await release(job, runId);
    throw err;
  }
  if (then === 'stop') {
    // Stopped, not dumped-and-killed: the network lock CRIU keeps for a restore would
    // cut the job off once it is resumed.
    await unlock(job, runId);
  } else if (then === 'terminate') {
    // Marked first, so that `ckpt run --isolate` exits with EXIT_CHECKPOINTED, not 137.
    try {
      writeJob({ ...job, checkpointedSeq: snapshot.seq });
    } catch {
      // the registry serves ps and the exit status; the snapshot stands without it
    }
    // SIGKILL to pid 1 ends the whole pid namespace. A host-side lock table (job
    // without --net) stays until the restore: peers see no reset meanwhile.
    signalPid(root, 'SIGKILL');
  }
  const bytes = snapshot.manifest.files.reduce((n, f) => n + f.size, 0);
  return { snapshot, job, stats, bytes, dumpMs, processes: record.tree.length };
}

async function unlock(job: JobRecord & { isolated: NonNullable<JobRecord['isolated']> }, runId: string | undefined): Promise<void> {
  if (job.isolated.net) await removeLockTable(runId, job.isolated.rootPid);
  else await removeLockTable(runId);
}

/** A failed commit after a stopped dump: let the job run on, network unlocked. */
async function release(job: JobRecord & { isolated: NonNullable<JobRecord['isolated']> }, runId: string | undefined): Promise<void> {
  await unlock(job, runId);
  for (const pid of processTree(job.isolated.rootPid)) signalPid(pid, 'SIGCONT');
}

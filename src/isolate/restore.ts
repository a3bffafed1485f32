// restartIsolated(): `ckpt restart SNAPSHOT` for a snapshot of an isolated job. CRIU
// recreates the pid, mount (and network) namespaces, so the restored tree never
// clashes with the original or with other copies; the job's output directory is
// mapped to a fresh one; with rst_sibling the job's pid 1 becomes our child, so
// its exit status is known.
import { closeSync, openSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { CkptError, CriuError, ErrorCodes } from '../errors.js';
import { envNumber } from '../config.js';
import { CriuSession, criuFailure } from '../criu/client.js';
import { readRestoreStats, type RestoreStats } from '../criu/images.js';
import { NetworkLock, ReqType } from '../criu/schema.js';
import { criuBinary, requirePrivileges } from '../crs/criu/index.js';
import { assertHasImages, criuLogLevel, IMAGES_DIR, RESTORE_LOG } from '../crs/criu/options.js';
import { holdUntilVerified, restoreError } from '../crs/criu/verified-restore.js';
import type { Manifest } from '../store/manifest.js';
import { beginVerification, openSnapshot, snapshotPath, type Snapshot } from '../store/store.js';
import { restartIdentity } from '../store/trust.js';
import { mkdirPrivate } from '../util/fsx.js';
import { native } from '../util/native.js';
import { logsDir } from '../util/paths.js';
import { restoreSucceeded } from '../util/restore-logs.js';
import { killNewChildren, ourChildren, removeLockTable } from './cleanup.js';
import { IsolatedJob, liveRoots } from './job.js';
import { createOutputDir, removeOutputDir } from './output.js';
import { restoreMountExternals } from './mounts.js';

const SIGNAL_NAMES: Record<number, NodeJS.Signals> = Object.fromEntries(
  Object.entries(constants.signals).map(([name, no]) => [no, name as NodeJS.Signals]),
);

export interface IsolatedRestartOptions {
  seq?: number;
  /** Check every file's checksum first (default true). */
  verify?: boolean;
  /** Name of the restored job in `ckpt ps` (default: the original's). */
  name?: string;
  output?: { stdout?: Writable; stderr?: Writable };
  register?: boolean;
  killGraceMs?: number;
  /** Its periodic checkpoints from now on (run by the caller: supervise.ts), recorded into its snapshots. */
  schedule?: { intervalMs: number; keep?: number };
  /** How long CRIU may take (ms, default 120 s; CKPT_RESTORE_TIMEOUT_MS): a hung restore is ended and cleaned up. */
  timeoutMs?: number;
  onProgress?: (message: string) => void;
  /** A head across nodes (nodes.ts): its parts on the other nodes, in its record from the start. */
  parts?: { host: string; name: string }[];
}

export interface IsolatedRestart {
  snapshot: Snapshot;
  job: IsolatedJob;
  stats?: RestoreStats;
}

export function isIsolatedSnapshot(manifest: Manifest): boolean {
  return manifest.kind === 'process' && manifest.process.isolation !== undefined;
}

/** A hint for the causes of a failed restore that users can do something about. */
export function restoreHint(errors: string[], logPath: string, net: boolean): string {
  const text = errors.join('\n');
  if (/Address already in use|Can't bind inet socket|Cannot assign requested address/.test(text) && !net) {
    return 'the snapshot shares the host network; run the job with ckpt run --isolate --net so that copies get their own';
  }
  if (/has bad size|No such file|Can't open file/.test(text)) return 'a file the job had open has changed or is gone since the checkpoint';
  if (/Failed unpacking|Can't read|Unexpected EOF|short read|corrupted|Can't open image|Bad magic/i.test(text)) {
    return 'the snapshot\'s images are damaged; verify it with `ckpt snapshots verify`, or use another snapshot';
  }
  return `CRIU's log: ${logPath}`;
}

/** CRIU's complaint about its own temporary directory (an empty directory left in /tmp). */
const CRIU_TEMP_DIR = /Unable to remove (\/tmp\/cr-tmpfs\.[A-Za-z0-9]+): Device or resource busy/;

/**
 * A restore into a user namespace leaves CRIU's empty temporary directory
 * `/tmp/cr-tmpfs.XXXXXX` behind (its tmpfs was still referenced when it tried to
 * remove it). Only the one this restore's log names is removed, and only if empty.
 */
function removeCriuTempDirs(logPath: string): void {
  let text = '';
  try {
    text = readFileSync(logPath, 'utf8');
  } catch {
    return;
  }
  for (const m of text.matchAll(new RegExp(CRIU_TEMP_DIR.source, 'g'))) {
    try {
      rmdirSync(m[1]!);
    } catch {
      // gone, or not empty: not ours to touch
    }
  }
}

/**
 * Runs criu in a private mount namespace in which the host mounts that the images
 * name as external have no submounts. A restore into a user namespace binds each
 * such mount from a copy of criu's mount namespace made for that user namespace,
 * where submounts are locked to their parent: the kernel refuses a plain bind of a
 * mount with locked submounts (`Can't bind-mount at …/dev: Invalid argument`).
 */
const CRIU_WRAPPER = String.raw`#!/bin/bash
exec unshare --mount --propagation private -- bash -c '
while IFS= read -r top; do
  [ -n "$top" ] || continue
  awk -v t="$top/" "index(\$5, t) == 1 { print \$5 }" /proc/self/mountinfo | sort -r | while IFS= read -r m; do
    umount -l "$m" 2>/dev/null
  done
done <<< "$CKPT_UNCOVER"
criu=$CKPT_CRIU
unset CKPT_UNCOVER CKPT_CRIU
exec "$criu" "$@"' ckpt-criu "$@"
`;

/**
 * Opens the restore's CRIU session. For a job that ran in a user namespace
 * (`userns` = the restore's private log directory): criu runs through
 * CRIU_WRAPPER, and reads a configuration file of ours (CRIU_CONFIG_FILE, 0600)
 * that turns on `mntns-compat-mode`, which this RPC schema does not carry: CRIU's
 * newer mount engine cannot bind the root there (`Unable to mount /proc/self/fd/N:
 * Invalid argument`).
 */
function openRestoreSession(criuPath: string, userns: { dir: string; uncover: string[] } | undefined): CriuSession {
  if (userns === undefined) return CriuSession.open({ criuPath });
  const config = join(userns.dir, 'criu.conf');
  writeFileSync(config, 'mntns-compat-mode\n', { mode: 0o600 });
  const wrapper = join(userns.dir, 'criu-wrapper');
  writeFileSync(wrapper, CRIU_WRAPPER, { mode: 0o700 });
  const vars: Record<string, string> = { CRIU_CONFIG_FILE: config, CKPT_CRIU: criuPath, CKPT_UNCOVER: userns.uncover.join('\n') };
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    // The child is spawned synchronously: only this criu sees the variables.
    return CriuSession.open({ criuPath: wrapper });
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

export async function restartIsolated(ref: string | Snapshot, options: IsolatedRestartOptions = {}): Promise<IsolatedRestart> {
  const snapshot = typeof ref === 'string' ? openSnapshot(ref, { seq: options.seq }) : ref;
  const manifest = snapshot.manifest;
  const iso = manifest.kind === 'process' ? manifest.process.isolation : undefined;
  if (manifest.kind !== 'process' || !iso) throw new CkptError(ErrorCodes.USAGE, `${snapshot.dir} is not a snapshot of an isolated job`);
  if (snapshot.manifest.crs.name !== 'criu') {
    throw new CkptError(ErrorCodes.SNAPSHOT_FORMAT, `isolated snapshot made by '${snapshot.manifest.crs.name}', not criu`);
  }
  restartIdentity(snapshot.owner, snapshot.dir, 'images');
  assertHasImages(snapshot.manifest.files, snapshot.dir);
  // The layout now, the checksums while CRIU restores (the tree is held at post-restore until they matched).
  let verification;
  if (options.verify !== false) {
    options.onProgress?.(`verifying ${snapshot.manifest.files.length} files`);
    verification = beginVerification(snapshot);
  }
  requirePrivileges();
  const criu = await criuBinary();

  const id = randomBytes(4).toString('hex');
  const ioDir = createOutputDir(id);
  const logDir = join(logsDir(), `restore-${id}`);
  mkdirPrivate(logDir);
  const logPath = join(logDir, RESTORE_LOG);
  const workDirFd = openSync(logDir, 'r');
  const before = ourChildren();
  const images = snapshotPath(snapshot, IMAGES_DIR);
  options.onProgress?.('restoring with CRIU');
  // A job in a user namespace: CRIU's newer mount engine cannot bind the root there
  // (`Unable to mount /proc/self/fd/N: Invalid argument`); its compat mode can.
  const userns = snapshot.manifest.files.some((f) => /(^|\/)userns-\d+\.img$/.test(f.path));
  const hostMounts = userns ? restoreMountExternals(iso.net) : [];
  const session = openRestoreSession(criu.path, userns ? { dir: logDir, uncover: hostMounts.map((e) => e.slice(e.indexOf(']:') + 2)) } : undefined);
  let resp;
  let timedOut = false;
  const timeoutMs = options.timeoutMs ?? envNumber('CKPT_RESTORE_TIMEOUT_MS');
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => {
      timedOut = true;
      resolve(undefined);
    }, timeoutMs);
  });
  try {
    const call = session.call({
      type: ReqType.RESTORE,
      opts: {
        imagesDir: images,
        workDirFd,
        logFile: RESTORE_LOG,
        logLevel: criuLogLevel(),
        // The mount namespace is rebuilt on the host's root (else CRIU: BUG at mount.c).
        root: '/',
        // pid 1 of the restored job becomes our child: we reap it and know its status.
        rstSibling: true,
        tcpEstablished: true,
        fileLocks: true,
        networkLock: NetworkLock.NFTABLES,
        // Host mounts a job in a user namespace had as external: the same host paths.
        external: [`mnt[${iso.ioKey}]:${ioDir}`, ...hostMounts],
        notifyScripts: verification !== undefined,
      },
    }, holdUntilVerified(verification));
    call.catch(() => {});
    resp = await Promise.race([expired, call]);
  } catch {
    resp = undefined;
  } finally {
    clearTimeout(timer);
    // A hung CRIU (and the tree it was restoring) is ended before anything else.
    if (timedOut) await killNewChildren(before, [...liveRoots], { criu: true });
    session.close();
    closeSync(workDirFd);
    await session.exited();
    if (userns) removeCriuTempDirs(logPath);
  }
  const pid = resp?.success ? (resp.restore?.pid ?? 0) : 0;
  if (!resp?.success || pid <= 1) {
    // Whatever CRIU started and left: the half-restored tree (our children since the
    // call: killing pid 1 of its namespace ends the namespace), the dump's lock table.
    await killNewChildren(before, [...liveRoots]);
    await removeLockTable(iso.dumpRunId);
    removeOutputDir(ioDir);
    const err = timedOut
      ? new CriuError(ErrorCodes.TIMEOUT, `CRIU restore of the isolated job did not finish within ${timeoutMs} ms`, {
          logPath,
          criuErrors: [],
        })
      : criuFailure('CRIU restore of the isolated job', resp ?? null, logPath, session.stderrText);
    const errors = err.criuErrors.filter((l) => !CRIU_TEMP_DIR.test(l));
    const message = errors.length && errors[0] !== err.criuErrors[0] ? `CRIU restore of the isolated job failed: ${errors[0]}` : err.message;
    throw await restoreError(
      verification,
      new CriuError(err.code, message, {
        cause: err,
        logPath,
        criuErrors: errors,
        hint: restoreHint(errors, logPath, iso.net),
      }),
    );
  }
  const job = new IsolatedJob({
    id,
    name: options.name ?? iso.name,
    command: manifest.process.argv,
    rootPid: pid,
    ioDir,
    net: iso.net,
    restoredFrom: snapshot.dir,
    parts: options.parts,
    output: options.output,
    register: options.register,
    killGraceMs: options.killGraceMs,
    ...(options.schedule ? { schedule: options.schedule } : {}),
    waitRoot: async () => {
      const st = await native().waitpid(pid);
      return { code: st.code, signal: st.signal === null ? null : (SIGNAL_NAMES[st.signal] ?? 'SIGKILL') };
    },
  });
  // CRIU writes stats-restore into its work directory (our log directory).
  const stats = readRestoreStats(logDir);
  restoreSucceeded(logDir, [pid]);
  return { snapshot, job, stats };
}

// Regular files a dumped tree writes to (`prog > out.log`, a scheduler's slurm-%j.out):
// they keep changing after the dump — the original, left running, writes on — and
// CRIU refuses to restore a file opened without O_APPEND whose size changed ("has
// bad size"). The dump records them; the restore opens each for appending at its
// current end (or where --stdout/--stderr/--log say) and hands that descriptor to
// CRIU through inherit-fd, in place of the file it would reopen and check.
import { closeSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { CkptError, CriuError, ErrorCodes, errnoCode } from '../../errors.js';
import type { RecordedFile } from '../../store/manifest.js';
import { openAppendFile } from '../../util/safe-walk.js';
import { openFds } from '../../util/procfs.js';
import { openForAppendAs } from './open-as.js';

const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_APPEND = 0o2000;

/** The regular files the tree holds open write-only, one entry per process and path. */
export function writableFiles(pids: number[]): RecordedFile[] {
  const out: RecordedFile[] = [];
  for (const pid of pids) {
    for (const fd of openFds(pid)) {
      try {
        const path = readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (!path.startsWith('/') || path.endsWith(' (deleted)')) continue;
        const st = statSync(`/proc/${pid}/fd/${fd}`);
        if (!st.isFile()) continue;
        const m = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
        if (!m?.[1]) continue;
        const flags = parseInt(m[1], 8);
        if ((flags & O_ACCMODE) !== O_WRONLY) continue;
        const append = (flags & O_APPEND) !== 0;
        const known = out.find((f) => f.pid === pid && f.path === path);
        if (known) {
          known.fds.push(fd);
          known.append &&= append;
        } else out.push({ path, pid, fds: [fd], append, size: st.size });
      } catch {
        // gone meanwhile, or not ours to read
      }
    }
  }
  return out;
}

export interface OutputOverrides {
  /** The root process's stdout (fd 1) goes to this file instead (appended). */
  stdout?: string;
  /** Its stderr (fd 2). */
  stderr?: string;
}

export interface FileInheritance {
  /** CRIU's key (the path without its leading `/`) → our descriptor. */
  files: { key: string; fd: number; path: string }[];
  /** Descriptors opened here: the caller closes them once CRIU has them. */
  opened: number[];
}

function sizeOf(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

/** Opens a file for appending (created 0600 if missing); a link there is refused. */
export function openForAppend(path: string, what: string): number {
  try {
    return openAppendFile(path);
  } catch (err) {
    if (err instanceof CkptError) throw err;
    const code = errnoCode(err);
    const denied = code === 'EACCES' || code === 'EPERM' || code === 'EROFS';
    throw new CkptError(denied ? ErrorCodes.PERMISSION : ErrorCodes.USAGE, `cannot open ${path} (${what}) for appending: ${code ?? String(err)}`, {
      hint:
        code === 'ELOOP'
          ? `${path} is now a symbolic link: remove it, or send the output elsewhere with --stdout/--stderr/--log`
          : `check ${path} and its directory, or send the output elsewhere with --stdout/--stderr/--log`,
      details: { path },
      cause: err,
    });
  }
}

/**
 * Which recorded files the restore hands in: each file written without O_APPEND
 * whose size changed since the dump (CRIU would refuse it) reopened for appending,
 * and any file on the root's fd 1 or 2 sent where --stdout/--stderr say. `asUid`:
 * root restoring another user's process opens its recorded files as that user
 * (open-as.ts): their paths run through directories the user can change.
 */
export async function fileInheritance(files: RecordedFile[], rootPid: number, overrides: OutputOverrides, asUid?: number): Promise<FileInheritance> {
  const byPath = new Map<string, string>();
  const opened: number[] = [];
  const result: { key: string; fd: number; path: string }[] = [];
  try {
    for (const f of files) {
      const onRoot = f.pid === rootPid;
      const override = (onRoot && f.fds.includes(1) && overrides.stdout) || (onRoot && f.fds.includes(2) && overrides.stderr) || undefined;
      // A file of the size it had is CRIU's to reopen, at its offset (a program writing
      // at positions keeps them); one that grew, shrank or went is appended to.
      const target = override ?? (f.append || sizeOf(f.path) === f.size ? undefined : f.path);
      if (!target) continue;
      const key = f.path.replace(/^\/+/, '');
      if (byPath.has(key)) continue;
      byPath.set(key, target);
      const what = target === f.path ? "written by the snapshot's process" : 'its new output';
      // Where --stdout/--stderr/--log send it is the caller's own choice; a recorded path is the user's.
      const fd = asUid !== undefined && target === f.path ? await openForAppendAs(target, asUid, what) : openForAppend(target, what);
      opened.push(fd);
      result.push({ key, fd, path: target });
    }
  } catch (err) {
    for (const fd of opened) closeSync(fd);
    throw err;
  }
  return { files: result, opened };
}

/**
 * CRIU's "File X has bad size N (expect M)": a file the snapshot's process had open
 * changed after the dump. Names the file and the ways out.
 */
export function badSizeError(err: CriuError): CriuError | undefined {
  const m = err.criuErrors.map((l) => /File (\S+) has bad size (\d+) \(expect (\d+)\)/.exec(l)).find(Boolean) ?? /File (\S+) has bad size (\d+) \(expect (\d+)\)/.exec(err.message);
  if (!m) return undefined;
  const path = `/${m[1]}`;
  return new CriuError(
    ErrorCodes.FILE_CHANGED,
    `cannot restore: ${path} changed size since the checkpoint (${m[2]} bytes now, ${m[3]} then), and the process reads it or has it open for reading and writing`,
    {
      cause: err,
      logPath: err.logPath,
      criuErrors: err.criuErrors,
      hint: `restore ${path} as it was at the checkpoint (truncate -s ${m[3]} ${path} if it only grew), or open it for appending (>>) in the program`,
      details: { path, size: Number(m[2]), expected: Number(m[3]) },
    },
  );
}

// Facts about a process read from /proc.
import { closeSync, openSync, readFileSync, readSync, readlinkSync, readdirSync, statSync } from 'node:fs';
import { errnoCode } from '../errors.js';

/** One buffer for the small files below: read synchronously, never two at once. */
const small = Buffer.allocUnsafe(16 * 1024);

/**
 * A small /proc file as text. procfs gives every file a size of 0, so readFileSync
 * stats it and reads into a fresh 64 KiB buffer; a reused one saves a third of
 * processTree (a criu rank reads its tree on its way down). A longer file is read whole.
 */
function readProcText(path: string): string {
  const fd = openSync(path, 'r');
  try {
    let n = 0;
    for (let r; (r = readSync(fd, small, n, small.length - n, null)) > 0; ) {
      n += r;
      if (n === small.length) return readFileSync(path, 'utf8');
    }
    return small.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
}

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgid: number;
  sid: number;
  /** Field 22: when the process started, in clock ticks since boot (with the pid, who it is: a reused pid starts later). */
  start: number;
}

export function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readProcText(`/proc/${pid}/stat`);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ESRCH') return undefined;
    throw err;
  }
  // comm may hold spaces and parentheses: split at the last ')'.
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const rest = text.slice(close + 2).split(' ');
  return {
    pid,
    comm,
    state: rest[0] ?? '?',
    ppid: Number(rest[1]),
    pgid: Number(rest[2]),
    sid: Number(rest[3]),
    start: Number(rest[19]),
  };
}

/** The uid owning /proc/PID (the process's real owner), undefined if gone. */
export function ownerUid(pid: number): number | undefined {
  try {
    return statSync(`/proc/${pid}`).uid;
  } catch {
    return undefined;
  }
}

export function cmdline(pid: number): string[] {
  try {
    const raw = readProcText(`/proc/${pid}/cmdline`);
    return raw.split('\0').filter((s, i, a) => s !== '' || i < a.length - 1);
  } catch {
    return [];
  }
}

/** What fd N of a process points at (`pipe:[123]`, `/dev/null`, `socket:[9]`…). */
export function fdTarget(pid: number | 'self', fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/** Direct children of a process. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readProcText(`/proc/${pid}/task/${task}/children`).trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // gone
  }
  return out;
}

/** The inode column of each socket table in /proc/PID/net. */
const INODE_COLUMN = { unix: 6, netlink: 9, tcp: 9, tcp6: 9 } as const;

/** Inodes of the sockets listed in /proc/PID/net/<table> (the network namespace of PID). */
export function socketInodes(pid: number | 'self', table: keyof typeof INODE_COLUMN): Set<string> {
  const column = INODE_COLUMN[table];
  const out = new Set<string>();
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n').slice(1)) {
    const ino = line.trim().split(/\s+/)[column];
    if (ino && ino !== '0') out.add(ino);
  }
  return out;
}

/** The descriptors a process has open (none once it is gone, or when we may not look). */
export function openFds(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/fd`).map(Number);
  } catch {
    return [];
  }
}

/** Whether any process of the tree holds a TCP socket (listening, connecting, established…). */
export function holdsTcpSockets(pids: number[]): boolean {
  if (pids.length === 0) return false;
  const sockets = new Set<string>();
  for (const pid of pids) {
    for (const fd of openFds(pid)) {
      const m = /^socket:\[(\d+)\]$/.exec(fdTarget(pid, fd) ?? '');
      if (m) sockets.add(m[1]!);
    }
  }
  if (sockets.size === 0) return false;
  // Unix and netlink sockets are listed cheaply; /proc/net/tcp walks the kernel's whole
  // connection hash table (~5 ms per read here), so it is read only when a socket is left.
  for (const ino of [...socketInodes(pids[0]!, 'unix'), ...socketInodes(pids[0]!, 'netlink')]) sockets.delete(ino);
  if (sockets.size === 0) return false;
  for (const table of ['tcp', 'tcp6'] as const) for (const ino of socketInodes(pids[0]!, table)) if (sockets.has(ino)) return true;
  return false;
}

/** A process and all its descendants. */
export function processTree(pid: number): number[] {
  const seen: number[] = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop()!;
    if (seen.includes(p)) continue;
    seen.push(p);
    todo.push(...childrenOf(p));
  }
  return seen;
}

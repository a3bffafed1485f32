// Who left a directory behind, and whether it is provably gone. A process that makes a
// directory only it removes (a node agent's relay directory, --stage copies) names
// itself in it: its pid, its start time (clock ticks since boot, /proc/PID/stat field
// 22: a later process given the same pid has another), its pid and network namespaces
// and its host. A sweeper takes such a directory only when that process is gone: on
// this host, seen through a /proc of that pid namespace (a pid means nothing in another
// one), with no process of that pid or one that started at another time; or, for a
// writer in another pid namespace (a node agent as root is pid 1 of one of its own), by
// its beacon (writer-beacon.ts). Anything it cannot tell is kept. (store/gc.ts does the
// same for a store's partial snapshots, by their pid@host.)
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { readStat } from './procfs.js';

export interface WriterTag {
  pid: number;
  /** Its start time, in clock ticks since boot. */
  start: number;
  /** The inodes of its pid and network namespaces. */
  pidns: number;
  netns: number;
  host: string;
}

/** `<pid>.<start>.<pidns>.<netns>@<host>`: a file name's part (a host name has no `/`). */
const TAG = /^(\d{1,10})\.(\d{1,20})\.(\d{1,20})\.(\d{1,20})@([A-Za-z0-9][A-Za-z0-9.-]{0,252})$/;

export const formatTag = (t: WriterTag): string => `${t.pid}.${t.start}.${t.pidns}.${t.netns}@${t.host}`;

export function parseTag(text: string): WriterTag | undefined {
  const m = TAG.exec(text.trim());
  if (!m) return undefined;
  const [pid, start, pidns, netns] = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
  return pid > 0 && [start, pidns, netns].every(Number.isSafeInteger) ? { pid, start, pidns, netns, host: m[5]! } : undefined;
}

/** A process's start time in clock ticks since boot; undefined when no process has that pid (as /proc shows it). */
export function startTicks(pid: number): number | undefined {
  const st = readStat(pid);
  if (!st) return undefined;
  if (!Number.isSafeInteger(st.start)) throw new Error(`/proc/${pid}/stat: no start time`);
  return st.start;
}

/** The inode of one of our namespaces, or undefined when /proc is not our own pid namespace's (then no pid can be judged). */
function namespace(kind: 'pid' | 'net'): number | undefined {
  try {
    if (readlinkSync('/proc/self') !== String(process.pid)) return undefined;
    const m = new RegExp(`^${kind}:\\[(\\d+)\\]$`).exec(readlinkSync(`/proc/self/ns/${kind}`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

let own: WriterTag | null | undefined;

/** This process's identity (undefined where it cannot be told: no /proc of its own, a host name unfit for a file name). */
export function ownTag(): WriterTag | undefined {
  if (own === undefined) {
    const [pidns, netns] = [namespace('pid'), namespace('net')];
    let start: number | undefined;
    try {
      start = pidns === undefined ? undefined : startTicks(process.pid);
    } catch {
      start = undefined;
    }
    const tag = pidns === undefined || netns === undefined || start === undefined ? undefined : { pid: process.pid, start, pidns, netns, host: hostname() };
    own = tag && parseTag(formatTag(tag)) ? tag : null;
  }
  return own ?? undefined;
}

/**
 * What /proc says of the writer named by `tag`: true, provably gone; false, running,
 * or not ours to judge (another host's, ourselves); undefined, /proc cannot tell (a
 * writer in another pid namespace: writer-beacon.ts can).
 */
export function goneByPid(tag: WriterTag): boolean | undefined {
  const me = ownTag();
  if (!me || tag.host !== me.host) return false;
  if (tag.pidns !== me.pidns) return undefined;
  if (tag.pid === me.pid && tag.start === me.start) return false;
  try {
    const start = startTicks(tag.pid);
    return start === undefined || start !== tag.start;
  } catch {
    return false;
  }
}

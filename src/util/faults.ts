// Deterministic fault points, in the spirit of CRIU's fault injection: tests make a
// rank or the coordinator die, stall or fail at an exact phase of the checkpoint
// protocol instead of acting after a sleep and hoping the phase has come.
//
//   CKPT_FAULT=<point>:<who>:<action>[@<n>][,<point>:<who>:<action>[@<n>]…]
//
// <point>  a named point (FAULT_POINTS; docs/TESTING.md lists where each one is)
// <who>    a rank number, `*` (every rank) or `coord` (the coordinator)
// <action> kill   SIGKILL this process (a crash: nothing runs after it)
//          exit   exit with status 70 at once
//          fail   throw ECKPT_FAULT at this point (the protocol's error path)
//          stall  never go on (the peer's timeout or a SIGKILL from the test ends it)
//          gate   create `$CKPT_FAULT_DIR/<point>.<who>` (exclusively, no link followed;
//                 CKPT_FAULT_DIR must be set) and wait until the test
//                 removes it: the test acts while the process stands exactly here
// @<n>     only the n-th time this process passes the point (1-based; default every time)
//
// Unset, a fault point costs one Map lookup. CKPT_FAULT is never recorded in a snapshot.
import { closeSync, existsSync, constants as fsConstants, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CkptError, ErrorCodes } from '../errors.js';

export const FAULT_POINTS = [
  // coordinator, before each phase of a job checkpoint
  'prepare',
  'reach',
  'drain',
  'save',
  'dump',
  'commit',
  'resume',
  // rank, as it handles each request (same names), and:
  'arrived', // self: at the first safe point after the prepare, before telling the coordinator
  'saved', // self: save() returned, before the state is written or replied
  'dumped', // criu: the dump is done, before the rank rejoins (the original, not a restored copy)
  'rejoin', // criu: a restored rank, before it rejoins the new coordinator
  'staged', // --stage: as rank N's staged images are about to be copied to the store (by its node's agent, or the coordinator of a job on one host)
  // `ckpt checkpoint --pid` (as coord):
  'written', // criu: CRIU has written the images (post-dump), the tree still frozen, before ckpt answers
  // `ckpt restart --lazy` (as coord):
  'restored', // criu: the tree restored and its checksums matched (post-restore), the lazy-pages daemon running, before the tree is released
] as const;
export type FaultPoint = (typeof FAULT_POINTS)[number];
export type FaultActor = number | 'coord';

const ACTIONS = ['kill', 'exit', 'fail', 'stall', 'gate'] as const;
type FaultAction = (typeof ACTIONS)[number];

interface Fault {
  action: FaultAction;
  nth?: number;
}

let parsed: { text: string; faults: Map<string, Fault[]> } | undefined;
const passes = new Map<string, number>();

/** Parses CKPT_FAULT; a malformed value is a usage error at the first fault point. */
export function parseFaults(text: string): Map<string, Fault[]> {
  const faults = new Map<string, Fault[]>();
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([a-z]+):(\d+|\*|coord):([a-z]+)(?:@(\d+))?$/.exec(item);
    if (!m || !(FAULT_POINTS as readonly string[]).includes(m[1]!) || !(ACTIONS as readonly string[]).includes(m[3]!)) {
      throw new CkptError(ErrorCodes.USAGE, `CKPT_FAULT: '${item}' is not <point>:<rank|*|coord>:<${ACTIONS.join('|')}>[@n] with a point among ${FAULT_POINTS.join(', ')}`);
    }
    const key = `${m[1]}:${m[2]}`;
    const list = faults.get(key) ?? [];
    list.push({ action: m[3] as FaultAction, ...(m[4] ? { nth: Number(m[4]) } : {}) });
    faults.set(key, list);
  }
  return faults;
}

function faultsNow(): Map<string, Fault[]> | undefined {
  const text = process.env.CKPT_FAULT;
  if (!text) return undefined;
  if (parsed?.text !== text) parsed = { text, faults: parseFaults(text) };
  return parsed.faults;
}

/**
 * Passes fault point `point` as `who`. Resolves at once unless CKPT_FAULT names it;
 * then does what it says (see the header). `fail` rejects with ECKPT_FAULT.
 */
export async function faultPoint(point: FaultPoint, who: FaultActor): Promise<void> {
  const faults = faultsNow();
  if (!faults) return;
  const list = [...(faults.get(`${point}:${who}`) ?? []), ...(who === 'coord' ? [] : (faults.get(`${point}:*`) ?? []))];
  if (list.length === 0) return;
  const key = `${point}:${who}`;
  const n = (passes.get(key) ?? 0) + 1;
  passes.set(key, n);
  for (const f of list) {
    if (f.nth !== undefined && f.nth !== n) continue;
    await act(f.action, point, who);
  }
}

async function act(action: FaultAction, point: FaultPoint, who: FaultActor): Promise<void> {
  switch (action) {
    case 'kill':
      process.kill(process.pid, 'SIGKILL');
      return new Promise(() => {});
    case 'exit':
      process.exit(70);
    // eslint-disable-next-line no-fallthrough
    case 'fail':
      throw new CkptError(ErrorCodes.FAULT, `fault injected at ${point} (${who === 'coord' ? 'coordinator' : `rank ${who}`})`);
    case 'stall':
      // A timer keeps the process alive; nothing resolves the promise.
      setInterval(() => {}, 1 << 30);
      return new Promise(() => {});
    case 'gate': {
      // A directory the test made: a fixed name in a shared one (/tmp) would let another
      // user plant a link that a root process then writes through.
      const dir = process.env.CKPT_FAULT_DIR;
      if (!dir) throw new CkptError(ErrorCodes.USAGE, 'CKPT_FAULT: a gate needs CKPT_FAULT_DIR (a private directory for its marker)');
      const marker = join(dir, `${point}.${who}`);
      const fd = openSync(marker, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
      try {
        writeFileSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      // The test removes the marker when it has done what it does at this point.
      await new Promise<void>((resolve) => {
        const t = setInterval(() => {
          if (!existsSync(marker)) {
            clearInterval(t);
            resolve();
          }
        }, 5);
      });
      return;
    }
  }
}

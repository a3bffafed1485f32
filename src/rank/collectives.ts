// Collective operations built on point-to-point messages with reserved negative
// tags, so they never match a user's recv (user tags are ≥ 0). Every rank calls
// collectives in the same order; per-(source, tag) ordering keeps successive
// calls apart without sequence numbers. Trees are binomial: log2(size) rounds.
import { CkptError, ErrorCodes } from '../errors.js';
import { FrameKind } from '../wire/frame.js';
import { decodeData, encodeData, type RawMessage } from './codec.js';

export type ReduceOp = 'sum' | 'min' | 'max';

/** What collectives need of a communicator: its place, and raw sends and receives. */
export interface Port {
  readonly rank: number;
  readonly size: number;
  sendRaw(dest: number, kind: FrameKind, tag: number, payload: Uint8Array): Promise<void>;
  recvRaw(source: number, tag: number, what: string, timeoutMs: number | undefined): Promise<RawMessage>;
}

const TAG_BARRIER = -2;
const TAG_BCAST = -3;
const TAG_REDUCE = -4;
const TAG_GATHER = -5;
const EMPTY = new Uint8Array(0);

/** Dissemination barrier: in round k every rank signals rank+2^k and waits for rank-2^k. */
export async function barrier(comm: Port, timeoutMs?: number): Promise<void> {
  const { rank, size } = comm;
  for (let k = 1, round = 0; k < size; k <<= 1, round++) {
    const to = (rank + k) % size;
    const from = (rank - k + size) % size;
    await comm.sendRaw(to, FrameKind.BYTES, TAG_BARRIER, EMPTY);
    await comm.recvRaw(from, TAG_BARRIER, `barrier (round ${round}, waiting for rank ${from})`, timeoutMs);
  }
}

/** Binomial-tree broadcast; the encoded payload is forwarded as received. */
export async function bcast(comm: Port, value: unknown, root: number, timeoutMs?: number): Promise<unknown> {
  const { rank, size } = comm;
  checkRoot(comm, root, 'bcast');
  const vr = (rank - root + size) % size;
  let kind: FrameKind;
  let payload: Uint8Array;
  let mask = 1;
  if (vr === 0) {
    ({ kind, payload } = encodeData(value));
    while (mask < size) mask <<= 1;
  } else {
    for (;;) {
      if (vr & mask) {
        const from = (vr - mask + root) % size;
        const m = await comm.recvRaw(from, TAG_BCAST, `bcast(root=${root}) waiting for rank ${from}`, timeoutMs);
        kind = m.kind;
        payload = m.payload;
        break;
      }
      mask <<= 1;
    }
  }
  for (mask >>= 1; mask > 0; mask >>= 1) {
    if (vr + mask < size) await comm.sendRaw((vr + mask + root) % size, kind, TAG_BCAST, payload);
  }
  // The root returns its own value; others decode (bytes arrive as Buffer).
  return vr === 0 ? value : decodeData({ kind, payload: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength) });
}

/** What goes up the reduce tree: the partial result, or why there is none (said to every rank by the broadcast). */
interface Partial {
  op?: string;
  v?: number | number[];
  error?: string;
}

/**
 * Reduce to rank 0 up a binomial tree, then broadcast: every rank gets the same bits.
 * Ranks that disagree (the operation, the shape) or a result JSON cannot carry (an
 * overflow to Infinity) make every rank throw the same ECKPT_USAGE, not some of them
 * wait for ever or return another rank's answer.
 */
export async function allreduce(comm: Port, value: number | number[], op: ReduceOp, timeoutMs?: number): Promise<number | number[]> {
  const combine = combiner(op);
  checkOperand(value, 'allreduce');
  const { rank, size } = comm;
  let acc: Partial = { v: value };
  for (let mask = 1; mask < size; mask <<= 1) {
    if ((rank & mask) === 0) {
      const from = rank | mask;
      if (from < size) {
        const m = decodeData(await comm.recvRaw(from, TAG_REDUCE, `allreduce('${op}') waiting for rank ${from}`, timeoutMs)) as Partial;
        if (acc.error === undefined) {
          if (m.error !== undefined) acc = { error: m.error };
          else if (m.op !== op) acc = { error: `rank ${from} asked for '${String(m.op)}', rank ${rank} for '${op}'` };
          else acc = combineValues(acc.v!, m.v!, combine, from);
        }
      }
    } else {
      await comm.sendRaw(rank & ~mask, FrameKind.JSON, TAG_REDUCE, encodeData(finite({ op, ...acc })).payload);
      break;
    }
  }
  const result = (await bcast(comm, rank === 0 ? finite(acc) : undefined, 0, timeoutMs)) as Partial;
  if (result.error !== undefined) throw new CkptError(ErrorCodes.USAGE, `allreduce: ${result.error}`);
  return result.v!;
}

/** A partial result JSON can carry: a sum past Number.MAX_VALUE is Infinity, which is said, not sent as null. */
function finite(p: Partial): Partial {
  if (p.error !== undefined || p.v === undefined) return p;
  const ok = typeof p.v === 'number' ? Number.isFinite(p.v) : p.v.every(Number.isFinite);
  return ok ? p : { op: p.op, error: 'the result is not a finite number (an overflow)' };
}

/** Linear gather: fine up to the job-size limit (256), and the root sees which rank is late. */
export async function gather(comm: Port, value: unknown, root: number, timeoutMs?: number): Promise<unknown[] | undefined> {
  checkRoot(comm, root, 'gather');
  const { kind, payload } = encodeData(value);
  if (comm.rank !== root) {
    await comm.sendRaw(root, kind, TAG_GATHER, payload);
    return undefined;
  }
  const out: unknown[] = new Array(comm.size);
  out[root] = value;
  for (let r = 0; r < comm.size; r++) {
    if (r === root) continue;
    out[r] = decodeData(await comm.recvRaw(r, TAG_GATHER, `gather(root=${root}) waiting for rank ${r}`, timeoutMs));
  }
  return out;
}

function checkRoot(comm: Port, root: number, what: string): void {
  if (!Number.isInteger(root) || root < 0 || root >= comm.size) {
    throw new CkptError(ErrorCodes.USAGE, `${what}: root ${root} is not a rank of this job (0…${comm.size - 1})`);
  }
}

function combiner(op: ReduceOp): (a: number, b: number) => number {
  switch (op) {
    case 'sum':
      return (a, b) => a + b;
    case 'min':
      return Math.min;
    case 'max':
      return Math.max;
    default:
      throw new CkptError(ErrorCodes.USAGE, `allreduce: unknown operation '${String(op)}' (sum, min or max)`);
  }
}

function checkOperand(v: unknown, what: string): void {
  const ok = (x: unknown) => typeof x === 'number' && Number.isFinite(x);
  if (!(ok(v) || (Array.isArray(v) && v.every(ok)))) throw new CkptError(ErrorCodes.USAGE, `${what}: the value must be a finite number or an array of them`);
}

function combineValues(a: number | number[], b: number | number[], f: (x: number, y: number) => number, from: number): Partial {
  if (typeof a === 'number' && typeof b === 'number') return { v: f(a, b) };
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) return { v: a.map((x, i) => f(x, b[i]!)) };
  return { error: `rank ${from} contributed a value of a different shape` };
}

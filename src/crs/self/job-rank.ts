// The self checkpointer's rank half: at the common safe point, save() and the
// library's own state — in the reply when small (the coordinator packs them), else
// as files of the rank's own, durable and checksummed — and, in a rank restarted
// from such a snapshot, load() at its first safe point.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CkptError, ErrorCodes, errnoCode } from '../../errors.js';
import { currentPid } from '../../store/record.js';
import { readPackSlice, type PackSlice } from '../../store/pack.js';
import { callSave } from './saved-state.js';
import { faultPoint } from '../../util/faults.js';
import { parse } from '../../wire/validate.js';
import { saveRequest } from '../../wire/messages.js';
import type { CheckpointResult } from '../hooks.js';
import type { RankCheckpointer, RankHost } from '../job.js';
import { selfCallbacks, STATE_BIN, STATE_JSON } from './index.js';

/** A rank's library state file (a large rank's; a small one's is in the pack). */
export const LIBRARY_STATE = 'library.json';

/** A rank restarted from a self job snapshot, until its first safe point. */
export interface SelfRestartFrom {
  dir: string;
  store: string;
  seq: number;
  rankDir: string;
  /** A small rank: save()'s bytes are this slice of the job's pack file. */
  packed?: { path: string; state: PackSlice; binary: boolean };
  safePoint: number;
  previousPid: number;
  previousHostname: string;
}

function noCallbacks(rank: number, what: string): CkptError {
  return new CkptError(ErrorCodes.SELF_NOT_REGISTERED, `rank ${rank} ${what}`, { hint: "call registerSelf({ save, load }) from 'ckpt' before the first safePoint()" });
}

export function selfRankHalf(host: RankHost): RankCheckpointer {
  return {
    atSafePoint: true,
    async checkpoint(s, m) {
      const req = parse(saveRequest, m, 'ckpt-save');
      const t0 = performance.now();
      const cb = selfCallbacks();
      if (!cb) throw noCallbacks(host.rank, 'has no save()/load() callbacks');
      // An abort that comes while save() runs is answered once it has returned: nothing is written then.
      const { binary, bytes: data } = await callSave(() => cb.save(), `rank ${host.rank}: `);
      await faultPoint('saved', host.rank);
      s.check();
      const library = Buffer.from(JSON.stringify({ ...(host.captureLibrary() as object), safePoint: host.safePoints }));
      const saveMs = () => Math.round((performance.now() - t0) * 100) / 100;
      if (data.byteLength + library.byteLength <= (req.inlineBytes ?? 0)) {
        // Small: in the reply. The coordinator packs every small rank into one file,
        // one fsync instead of one per rank (16 ranks fsyncing at once took ~25 ms here).
        const b64 = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64');
        return { safePoint: host.safePoints, saveMs: saveMs(), reachMs: s.reachMs, inline: { binary, state: b64(data), library: b64(library) } };
      }
      // Large: each rank makes its own files durable, all ranks at once.
      const writer = s.writer(req.rankDir);
      if (!writer.open()) throw s.endedError();
      const files = [];
      for (const [name, bytes] of [[binary ? STATE_BIN : STATE_JSON, data], [LIBRARY_STATE, library]] as const) {
        s.check();
        files.push(await writer.writeFile(name, bytes));
      }
      s.check();
      writer.finish();
      // Synced and hashed here: the coordinator's commit takes them as they are.
      return { safePoint: host.safePoints, files: files.map((f) => ({ name: f.path, size: f.size, xxh64: f.xxh64 })), saveMs: saveMs(), reachMs: s.reachMs };
    },
  };
}

/**
 * What the rank's save() returned, read back from the snapshot: its slice of the pack
 * file, or its own state.json (else state.bin). Unreadable (a damaged snapshot whose
 * checksums were made to match, or one restarted with --no-verify): ECKPT_SNAPSHOT_CORRUPT.
 */
export function savedState(rank: number, from: SelfRestartFrom): unknown {
  const corrupt = (what: string, err?: unknown) =>
    new CkptError(ErrorCodes.SNAPSHOT_CORRUPT, `rank ${rank}'s saved state ${what}${err ? `: ${(err as Error).message}` : ''}`, err ? { cause: err } : {});
  if (from.packed) {
    const bytes = readPackSlice(from.packed.path, from.packed.state);
    if (from.packed.binary) return new Uint8Array(bytes);
    try {
      return JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw corrupt('in the pack file is not JSON', err);
    }
  }
  let text: string | undefined;
  try {
    text = readFileSync(join(from.rankDir, STATE_JSON), 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw corrupt(`(${STATE_JSON}) cannot be read`, err);
  }
  if (text !== undefined) {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw corrupt(`(${STATE_JSON}) is not JSON`, err);
    }
  }
  try {
    return new Uint8Array(readFileSync(join(from.rankDir, STATE_BIN)));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw corrupt(`is missing: its directory holds neither ${STATE_JSON} nor ${STATE_BIN}`);
    throw corrupt(`(${STATE_BIN}) cannot be read`, err);
  }
}

/** A restarted rank's first safe point: load() gets what save() returned. */
export async function restartSelfRank(rank: number, from: SelfRestartFrom, state = savedState(rank, from)): Promise<CheckpointResult> {
  const cb = selfCallbacks();
  if (!cb) throw noCallbacks(rank, 'restarts from a snapshot but has no load() callback');
  await cb.load(state);
  return {
    state: 'restart',
    crs: 'self',
    pid: currentPid(),
    previousPid: from.previousPid,
    hostname: hostname(),
    previousHostname: from.previousHostname,
    snapshot: { store: from.store, seq: from.seq, dir: from.dir },
  };
}

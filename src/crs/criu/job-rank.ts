// The criu checkpointer's rank half: no safe point. At the dump request the rank
// leaves the job, CRIU dumps it wherever its code is, and it rejoins — the same
// coordinator in the original, the restarted job's in a restored copy, which
// learns where that is from the rejoin pipe (the restart pre-fills it). What its
// restore will need (its process tree as CRIU wrote it, stdio, the rejoin pipe) it
// says in its report after the dump, or, left frozen by it, in its reply before.
import { closeSync, fstatSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { CkptError, ErrorCodes } from '../../errors.js';
import { currentPid, needsShellJob } from '../../store/record.js';
import type { FileEntry } from '../../store/checksum.js';
import type { ProcessRecord } from '../../store/manifest.js';
import type { SnapshotWriter } from '../../store/writer.js';
import { native } from '../../util/native.js';
import { fdTarget, processTree } from '../../util/procfs.js';
import { dumpedPids } from '../../criu/images.js';
import { faultPoint } from '../../util/faults.js';
import { parse, type Checked } from '../../wire/validate.js';
import { dumpRequest } from '../../wire/messages.js';
import { encodeControl } from '../../wire/frame.js';
import type { CheckpointResult } from '../hooks.js';
import type { DownOutcome, RankCheckpointer, RankHost, RankSession, RejoinInfo } from '../job.js';

export type { RejoinInfo } from '../job.js';

/** What a dump needs before the rank goes down, readied before the drain (RankCheckpointer.ahead) when it can be. */
interface Readied {
  req: Checked<typeof dumpRequest>;
  /** Its host (the restored copy compares): asked while the drain waits, not on its way down. */
  hostName: string;
  writer: SnapshotWriter;
  readEnd: number;
  record: RankProcess;
}

/**
 * What the restore needs of the rank's process beyond its images: its pid, its
 * stdio (handed in anew) and whether its session is led from outside. Not a whole
 * process record: CRIU restores argv, cwd and environment from the images, and
 * reading them cost every rank ~0.3 ms on its way down, 8 ranks on 2 cores.
 */
type RankProcess = Pick<ProcessRecord, 'pid' | 'stdio' | 'shellJob'>;

function rankProcess(): RankProcess {
  const pid = currentPid();
  return { pid, stdio: [0, 1, 2].map((fd) => fdTarget(pid, fd) ?? null), shellJob: needsShellJob(pid) };
}

export function criuRankHalf(host: RankHost): RankCheckpointer {
  /** The read end of the rejoin pipe, a timer that keeps the process alive, and who we were, for the pending checkpoint. */
  let rejoinFd: number | undefined;
  let keepAlive: NodeJS.Timeout | undefined;
  let before: { pid: number; hostname: string; store: string; seq: number; dir: string } | undefined;

  const readRejoin = (): RejoinInfo => {
    if (rejoinFd === undefined) throw new CkptError(ErrorCodes.INTERNAL, 'no rejoin pipe');
    const text = readFileSync(rejoinFd, 'utf8');
    closeSync(rejoinFd);
    rejoinFd = undefined;
    let info: RejoinInfo;
    try {
      info = JSON.parse(text) as RejoinInfo;
    } catch {
      throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${host.rank} was restored without rejoin information (read ${text.length} bytes)`);
    }
    if (typeof info?.coord !== 'string' || typeof info.job !== 'string' || typeof info.secret !== 'string' || (info.peerHost !== undefined && typeof info.peerHost !== 'string')) {
      throw new CkptError(ErrorCodes.OOB_PROTOCOL, `rank ${host.rank} was restored with incomplete rejoin information`);
    }
    return info;
  };

  /** The dump's request, its rank directory, rejoin pipe and process record, readied by ahead() (or an error of doing so). */
  let readied: Readied | Error | undefined;
  const ready = (s: RankSession, m: Record<string, unknown>): Readied => {
    const req = parse(dumpRequest, m, 'ckpt-dump');
    const writer = s.writer(req.rankDir);
    // Its directory in the snapshot (a staged one on its node's disk is made with its images), unless
    // the coordinator made it; never again once an abort removed the snapshot.
    if (req.staged !== true && !writer.open()) throw s.endedError();
    const n = native();
    const [readEnd, writeEnd] = n.pipe();
    n.close(writeEnd);
    rejoinFd = readEnd;
    return { req, hostName: hostname(), writer, readEnd, record: rankProcess() };
  };

  return {
    atSafePoint: false,
    async prepare() {
      keepAlive = setInterval(() => {}, 1 << 30);
      // What the restore needs of this process is said at the dump, where it is taken
      // (once, and by every rank at once): the prepare is as cheap as a bare round.
      return { drainAtDump: true };
    },
    ahead(s, m) {
      try {
        readied = ready(s, m);
      } catch (err) {
        readied = err as Error;
      }
    },
    async checkpoint(s, m, reply) {
      const r = readied ?? ready(s, m);
      readied = undefined;
      if (r instanceof Error) throw r;
      const { req, hostName, writer, readEnd, record } = r;
      before = { pid: record.pid, hostname: hostName, store: s.store, seq: s.seq, dir: s.dir };
      // Its unix connection to the coordinator (or its node's agent) stays open across the dump: external to CRIU.
      const control = host.keptConnection();
      const described = { pid: record.pid, stdio: record.stdio, shellJob: record.shellJob, networkLock: 'skip', rejoin: `pipe:[${fstatSync(readEnd).ino}]`, ...(control ? { control } : {}) };
      // Left frozen by its dump, it cannot report: it says all in its reply, its tree read
      // last (a child forked while the markers came in is in the tree CRIU dumps). Else
      // the tree is the one CRIU wrote, read after the dump: not on every rank's way down.
      const frozen = req.leaveStopped === true;
      await host.goDown(
        () => reply(frozen ? { ...described, tree: processTree(record.pid) } : {}),
        async (coordinatorFd, back): Promise<DownOutcome> => {
          let restored = false;
          let dumpError: Error | undefined;
          let files: FileEntry[] | undefined;
          let dumpedProcess: Record<string, unknown> | undefined;
          /** Of dumpMs, the fsync and checksum of its images (the bench's breakdown of the pause). */
          let syncMs: number | undefined;
          const t0 = performance.now();
          try {
            // CRIU's client is loaded at the first dump, not at the rank's start-up.
            const { dumpJobRank } = await import('./index.js');
            // A checkpoint that ends the job: the rank stays frozen after its dump; the
            // shell that ran CRIU says `dumped` on the rank's coordinator connection.
            const stopped = coordinatorFd === undefined ? undefined : { fd: coordinatorFd, bytes: encodeControl({ type: 'dumped' }) };
            const dumped = await dumpJobRank(writer.path('images'), record, stopped, control);
            restored = dumped.restored;
            if (!restored) back();
            if (!restored && !dumped.woken) {
              const tree = dumpedPids(writer.path('images'));
              if (!tree || tree[0] !== record.pid) throw new CkptError(ErrorCodes.CHECKPOINT_FAILED, `rank ${host.rank}: CRIU's pstree.img does not list its process first`);
              dumpedProcess = { ...described, tree };
            }
            // The original makes its own images durable and checksums them, all ranks
            // at once: the coordinator's commit then takes them as they are. One that
            // stayed frozen and was woken (its commit failed) has nothing more to give.
            // Staged (--stage): its node's agent syncs and checksums the copies in the store, after the job went on.
            // Its whole directory (its images, and anything else in it): the commit lists none of it again.
            if (!restored && !dumped.woken && req.staged !== true) {
              const t1 = performance.now();
              files = await writer.syncTree();
              syncMs = Math.round((performance.now() - t1) * 100) / 100;
            }
          } catch (err) {
            dumpError = err as Error;
          }
          // This rank's local snapshot, for the coordinator's record (not meaningful in a restored copy).
          const dumpMs = Math.round((performance.now() - t0) * 100) / 100;
          // When it ended by the node's clock (ms since the epoch): bench/slurm.mjs sets the dumps of one node side by side.
          const dumpEndAt = Math.round((performance.timeOrigin + performance.now()) * 100) / 100;
          await faultPoint(restored ? 'rejoin' : 'dumped', host.rank);
          if (restored) return { restored: true, rejoin: readRejoin() };
          return { restored: false, report: { dumped: dumpError ? 'error' : 'ok', dumpMs, dumpEndAt, ...(syncMs !== undefined ? { syncMs } : {}), ...(files ? { files } : {}), ...(dumpedProcess && !dumpError ? { process: dumpedProcess } : {}), ...(dumpError ? { message: dumpError.message } : {}) } };
        },
        frozen,
      );
      return undefined;
    },
    end() {
      readied = undefined;
      if (keepAlive) clearInterval(keepAlive);
      keepAlive = undefined;
      if (rejoinFd !== undefined) {
        try {
          closeSync(rejoinFd);
        } catch {
          // already closed
        }
        rejoinFd = undefined;
      }
    },
    async restarted(): Promise<CheckpointResult> {
      const b = before;
      return {
        state: 'restart',
        crs: 'criu',
        pid: currentPid(),
        previousPid: b?.pid ?? currentPid(),
        hostname: hostname(),
        previousHostname: b?.hostname ?? hostname(),
        snapshot: { store: b?.store ?? '', seq: b?.seq ?? 0, dir: b?.dir ?? '' },
      };
    },
  };
}

// Restart from a criu job snapshot: every rank is restored by CRIU as our child
// instead of being started. Its old stdout/stderr become new pipes we forward (or
// its --output files); its rejoin pipe becomes one that tells it the new
// coordinator's address, the job id and secret, so it rejoins from inside its dump;
// the coordinator connection it kept across the dump, a stand-in that ends at once.
import { closeSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { CkptError, ErrorCodes } from '../../errors.js';
import { snapshotPath, type JobSnapshot } from '../../store/store.js';
import { native } from '../../util/native.js';
import { logsDir } from '../../util/paths.js';
import { restoreSucceeded } from '../../util/restore-logs.js';
import type { RankRestoreContext } from '../job.js';
import type { CriuRankRecord } from './job.js';
import { criuBinary } from './index.js';
import { restoreJobRank } from './restore.js';

/** CRIU restores of a job's ranks run this many at a time. */
const RESTORE_CONCURRENCY = Math.max(2, Math.min(8, availableParallelism() * 2));

type RankRecord = CriuRankRecord;

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/**
 * Restores every rank of `snapshot`. Every restore settles before a failure is
 * reported (a CkptError), so that no restored rank is left without its onRestored.
 */
export async function restoreCriuRanks(snapshot: JobSnapshot, ctx: RankRestoreContext): Promise<void> {
  const criuPath = (await criuBinary()).path;
  const logDir = join(logsDir(), `restore-job-${snapshot.seq}-${Date.now()}-${process.pid}`);
  const restoredPids: number[] = [];
  const restoreRank = async (rec: RankRecord): Promise<void> => {
    if (!rec.rejoin || !rec.stdio) throw new CkptError(ErrorCodes.SNAPSHOT_FORMAT, `rank ${rec.rank} of ${snapshot.dir} has no criu restore record`);
    const ours: number[] = [];
    const streams: (Readable | null)[] = [null, null];
    try {
      const inherit = outputFds(rec, ctx.outputFile, streams, ours);
      const rejoinRead = rejoinPipe(ctx.rejoin);
      ours.push(rejoinRead);
      inherit.push({ key: rec.rejoin, fd: rejoinRead });
      if (rec.control) {
        // Its connection to the old coordinator, kept across the dump: a stand-in that
        // ends at once (the rank joins the new coordinator anew, from its rejoin pipe).
        const [readEnd, writeEnd] = native().pipe();
        closeQuietly(writeEnd);
        ours.push(readEnd);
        inherit.push({ key: rec.control, fd: readEnd });
      }
      const pid = await restoreJobRank(
        {
          imagesDir: snapshotPath(snapshot, rec.dir, 'images'),
          pids: rec.tree?.length ? rec.tree : [rec.pid],
          inherit,
          shellJob: rec.shellJob,
          networkLock: rec.networkLock,
          logDir: join(logDir, `rank-${rec.rank}`),
          verification: ctx.verification,
        },
        criuPath,
      );
      restoredPids.push(pid);
      ctx.onRestored(rec.rank, pid, streams[0] ?? null, streams[1] ?? null);
    } catch (err) {
      for (const s of streams) s?.destroy();
      throw err;
    } finally {
      // The restored rank holds its own copies now.
      for (const fd of ours) closeQuietly(fd);
    }
  };
  // A few restores at a time: each CRIU restore waits on the disk and the kernel part of the time.
  const only = ctx.ranks ? new Set(ctx.ranks) : undefined;
  const queue = (snapshot.manifest.ranks as RankRecord[]).filter((r) => !only || only.has(r.rank)); // validated by validateRank before any restart
  const settled: PromiseSettledResult<void>[] = [];
  const worker = async () => {
    for (let rec = queue.shift(); rec; rec = queue.shift()) settled.push(...(await Promise.allSettled([restoreRank(rec)])));
  };
  await Promise.all(Array.from({ length: Math.min(RESTORE_CONCURRENCY, queue.length) }, worker));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    const err = failed.reason as unknown;
    throw err instanceof CkptError ? err : new CkptError(ErrorCodes.CRIU_FAILED, (err as Error).message, { cause: err });
  }
  restoreSucceeded(logDir, restoredPids);
}

/**
 * The fds that stand in for the rank's old stdout and stderr (CRIU's inherit_fd,
 * keyed by the old pipe or socket): its output file, or the write end of a new
 * pipe whose read end becomes `streams[i]`. Every fd is pushed onto `ours`.
 */
function outputFds(rec: RankRecord, outputFile: RankRestoreContext['outputFile'], streams: (Readable | null)[], ours: number[]): { key: string; fd: number }[] {
  const inherit: { key: string; fd: number }[] = [];
  for (const i of [1, 2] as const) {
    const key = rec.stdio?.[i];
    if (!key || !/^(pipe|socket):\[\d+\]$/.test(key)) continue;
    if (inherit.some((h) => h.key === key)) continue; // 2>&1: one pipe
    let fd: number;
    if (outputFile) {
      fd = outputFile(rec.rank, i === 1 ? 0 : 1);
    } else {
      // The read end belongs to the stream from here on.
      const [readEnd, writeEnd] = native().pipe();
      streams[i - 1] = new Socket({ fd: readEnd, readable: true, writable: false });
      fd = writeEnd;
    }
    ours.push(fd);
    inherit.push({ key, fd });
  }
  return inherit;
}

/** A pipe holding the rejoin message; the read end is returned (the caller's to close). */
function rejoinPipe(message: RankRestoreContext['rejoin']): number {
  const [readEnd, writeEnd] = native().pipe();
  try {
    writeSync(writeEnd, JSON.stringify(message));
  } catch (err) {
    closeQuietly(readEnd);
    throw err;
  } finally {
    closeSync(writeEnd);
  }
  return readEnd;
}

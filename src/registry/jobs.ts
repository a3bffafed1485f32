// The per-user job registry: one file per running job in $STATE/jobs/, written by
// the launcher, read by `ckpt ps` / `ckpt kill`. The files hold the job secret, so
// the directory is 0700 and the files 0600. A job whose launcher is gone is dead
// and its entry is removed by whoever lists the jobs next.
import { readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { errnoCode } from '../errors.js';
import { JobError, ErrorCodes } from '../errors.js';
import { mkdirPrivate, PRIVATE_FILE_MODE, writeFileAtomic } from '../util/fsx.js';
import { listSnapshots } from '../store/store.js';
import { readStat } from '../util/procfs.js';
import { stateDir } from '../util/paths.js';
import { isAlive } from '../util/signals.js';
import { removeOwnDir } from '../util/remove-tree.js';
import { readAccepted } from '../util/dirfd.js';

export type JobState = 'starting' | 'running' | 'aborting' | 'exited';

/** An isolated job (ckpt run --isolate): one process tree in its own namespaces. */
export interface IsolationInfo {
  /** Host pid of the job's pid 1 (the namespace init) and its start time (pid reuse guard). */
  rootPid: number;
  rootStart: number;
  /** The private directory holding the job's stdout/stderr files. */
  ioDir: string;
  /** Whether the job has its own network namespace. */
  net: boolean;
  /** The snapshot a restored job came from. */
  restoredFrom?: string;
  /** Its periodic checkpoints, recorded into its snapshots (a restart resumes them). */
  schedule?: { intervalMs: number; keep?: number };
  /** mpirun across nodes (isolate/node-parts.ts): the isolated job holding orted on each other node. */
  parts?: { host: string; name: string }[];
}

export interface JobRecord {
  /** 'ranks' (ckpt run -n, the default when absent) or 'isolated' (ckpt run --isolate, or a restored isolated snapshot). */
  kind?: 'ranks' | 'isolated';
  isolated?: IsolationInfo;
  id: string;
  name: string;
  size: number;
  oob: 'unix' | 'tcp';
  /** The coordinator's OOB address. */
  address: string;
  /** The job's private socket directory (removed with the entry of a dead job). */
  dir?: string;
  secret: string;
  /** The launcher (`ckpt run`) process and its start time (guards against pid reuse). */
  pid: number;
  pidStart: number;
  command: string[];
  /** Each rank's pid; for a rank on another node, its pid there and the node's name. */
  ranks: { rank: number; pid: number | null; node?: string }[];
  state: JobState;
  startedAt: number;
  /** Set by a checkpoint that ends the job (`--term`) before it kills it: the seq it was saved as. */
  checkpointedSeq?: number;
}

export { EXIT_CHECKPOINTED } from '../util/exit-status.js';

export function jobsDir(): string {
  return join(stateDir(), 'jobs');
}

export function writeJob(record: JobRecord): void {
  mkdirPrivate(jobsDir());
  writeFileAtomic(join(jobsDir(), `${record.id}.json`), `${JSON.stringify(record, null, 2)}\n`);
}

export function removeJob(id: string): void {
  rmSync(join(jobsDir(), `${id}.json`), { force: true });
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
export function processStartTime(pid: number): number | undefined {
  try {
    return readStat(pid)?.start;
  } catch {
    return undefined;
  }
}

export function isJobAlive(record: JobRecord): boolean {
  if (isAlive(record.pid) && processStartTime(record.pid) === record.pidStart) return true;
  // An isolated job lives as long as its tree does, even when its launcher was killed.
  const iso = record.kind === 'isolated' ? record.isolated : undefined;
  return !!iso && isAlive(iso.rootPid) && processStartTime(iso.rootPid) === iso.rootStart;
}

/**
 * A registry entry: undefined if unreadable (a torn write, not a record: removed by the
 * caller); 'skip' if gone, or not a regular file (a FIFO would hang the read, a
 * directory is not one of ours to remove): neither read nor removed.
 */
function readRecord(path: string): JobRecord | undefined | 'skip' {
  let text: string | undefined;
  try {
    text = readAccepted(path, (st) => st.isFile() && st.size <= MAX_RECORD_BYTES);
  } catch (err) {
    return errnoCode(err) === 'ENOENT' ? 'skip' : undefined;
  }
  if (text === undefined) return 'skip';
  try {
    const r = JSON.parse(text) as Partial<JobRecord> | null;
    const ok = typeof r === 'object' && r !== null && typeof r.id === 'string' && typeof r.name === 'string' && Number.isSafeInteger(r.pid) && typeof r.pidStart === 'number' && Array.isArray(r.ranks) && typeof r.startedAt === 'number';
    return ok ? (r as JobRecord) : undefined;
  } catch {
    return undefined;
  }
}

/** A record is a few KiB (a rank list of at most 256): anything far larger is not one. */
const MAX_RECORD_BYTES = 4 * 2 ** 20;

/** Running jobs, oldest first; entries of dead jobs are removed on the way. */
export function listJobs(): JobRecord[] {
  let names: string[];
  try {
    names = readdirSync(jobsDir());
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  const jobs: JobRecord[] = [];
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    const path = join(jobsDir(), name);
    const record = readRecord(path);
    if (record === 'skip') continue;
    if (record === undefined) {
      rmSync(path, { force: true }); // unreadable: a torn write of a dead launcher
      continue;
    }
    if (isJobAlive(record)) {
      jobs.push(record);
      continue;
    }
    rmSync(path, { force: true });
    // Only ever a directory this job made: $TMP/ckpt-<id>-XXXXXX, and only while it is
    // still ours: its launcher killed and /tmp emptied, another user may have made one by that name.
    if (record.dir && basename(record.dir).startsWith(`ckpt-${record.id}-`)) removeOwnDir(record.dir);
  }
  return jobs.sort((a, b) => a.startedAt - b.startedAt);
}

/** A job by id, unique id prefix, or name. */
export function findJob(query: string): JobRecord {
  // An empty one would be a prefix of every id: `ckpt kill "$JOB"` with JOB unset must not end a job.
  if (query === '') throw new JobError(ErrorCodes.USAGE, 'name the job (its id, a unique id prefix, or its name), not an empty string', { hint: "see 'ckpt ps'" });
  const jobs = listJobs();
  const exact = jobs.find((j) => j.id === query);
  if (exact) return exact;
  const matches = jobs.filter((j) => j.id.startsWith(query) || j.name === query);
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw new JobError(ErrorCodes.USAGE, `'${query}' matches ${matches.length} jobs (${matches.map((j) => j.id).join(', ')}): give the job id`);
  }
  throw new JobError(ErrorCodes.JOB_NOT_FOUND, `no running job '${query}'`, { hint: "see 'ckpt ps'" });
}

// ── Store claims: a snapshot store holds the snapshots of one job ───────────────
// A job's snapshots are those whose manifest names the job (its name: a restarted
// job keeps it, and goes on in its own store). A store holding another job's (or a
// process's) snapshots is refused, and so is one a live job of another launch has
// claimed: $STATE/stores/<hash of the store's path>.json, created exclusively,
// naming the job and its launcher (pid + start time: a dead launcher's claim is
// stale and taken over).

export interface StoreClaim {
  store: string;
  job: string;
  name: string;
  pid: number;
  pidStart: number;
}

export function storesDir(): string {
  return join(stateDir(), 'stores');
}

/** The store's path with symlinks resolved as far as it exists (the same store by any name). */
export function canonicalStore(store: string): string {
  let head = resolve(store);
  const tail: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(head), ...tail.reverse());
    } catch {
      const up = dirname(head);
      if (up === head) return resolve(store);
      tail.push(basename(head));
      head = up;
    }
  }
}

const claimPath = (store: string): string => join(storesDir(), `${createHash('sha256').update(store).digest('hex').slice(0, 32)}.json`);

function storeInUse(store: string, message: string, details: Record<string, unknown>): JobError {
  return new JobError(ErrorCodes.STORE_IN_USE, `snapshot store ${store} ${message}`, {
    hint: 'a store holds the snapshots of one job: give this job a --dir of its own',
    details: { store, ...details },
  });
}

/** Refuses a store that holds snapshots of anything but the job `name`. */
export function assertStoreOfJob(store: string, name: string): void {
  let listed: ReturnType<typeof listSnapshots>;
  try {
    listed = listSnapshots(store);
  } catch {
    return; // no store yet (or not one: the first checkpoint says why)
  }
  for (const s of listed) {
    const m = s.manifest;
    if (!m) continue; // unreadable: nobody's, and never removed by retention either
    if (m.kind !== 'job') throw storeInUse(store, `holds snapshots of a process (seq ${s.seq})`, { owner: null });
    if (m.job.name !== name) throw storeInUse(store, `holds snapshots of job '${m.job.name}' (seq ${s.seq}), not of '${name}'`, { owner: m.job.name });
  }
}

function readClaim(path: string): StoreClaim | undefined {
  try {
    // Never a FIFO's blocking read: anything but a small regular file is no claim.
    const text = readAccepted(path, (st) => st.isFile() && st.size <= MAX_RECORD_BYTES);
    return text === undefined ? undefined : (JSON.parse(text) as StoreClaim);
  } catch {
    return undefined;
  }
}

const claimAlive = (c: StoreClaim | undefined): c is StoreClaim =>
  !!c && Number.isSafeInteger(c.pid) && c.pid > 1 && isAlive(c.pid) && processStartTime(c.pid) === c.pidStart;

/** Refuses a store claimed by another live job, or holding another job's snapshots (without claiming it). */
export function assertStoreFree(storePath: string, job: { id: string; name: string }): void {
  const store = canonicalStore(storePath);
  const claim = readClaim(claimPath(store));
  if (claimAlive(claim) && claim.job !== job.id) {
    throw storeInUse(store, `is in use by job '${claim.name}' (${claim.job}, launcher pid ${claim.pid})`, { owner: claim.name, job: claim.job });
  }
  assertStoreOfJob(store, job.name);
}

/**
 * Claims the store for a job being launched (ECKPT_STORE_IN_USE when another live
 * job has it, or it holds another job's snapshots). Returns the release, which
 * removes the claim while it is still this job's.
 */
export function claimStore(storePath: string, job: { id: string; name: string }): () => void {
  const store = canonicalStore(storePath);
  const path = claimPath(store);
  const mine: StoreClaim = { store, job: job.id, name: job.name, pid: process.pid, pidStart: processStartTime(process.pid) ?? 0 };
  for (let attempt = 0; ; attempt++) {
    try {
      mkdirPrivate(storesDir());
      writeFileSync(path, `${JSON.stringify(mine)}\n`, { flag: 'wx', mode: PRIVATE_FILE_MODE });
      break;
    } catch (err) {
      // A state directory we cannot write (read-only, full): the job runs unclaimed,
      // as it runs unregistered; the snapshots' own names still guard the store.
      if (errnoCode(err) !== 'EEXIST') break;
      if (attempt >= 5) throw err;
    }
    const held = readClaim(path);
    if (claimAlive(held)) {
      throw storeInUse(store, `is in use by job '${held.name}' (${held.job}, launcher pid ${held.pid})`, { owner: held.name, job: held.job });
    }
    // Stale (its launcher is gone) or torn: take it over.
    rmSync(path, { force: true });
  }
  const release = () => {
    if (readClaim(path)?.job === job.id) rmSync(path, { force: true });
  };
  try {
    assertStoreOfJob(store, job.name);
  } catch (err) {
    release();
    throw err;
  }
  return release;
}

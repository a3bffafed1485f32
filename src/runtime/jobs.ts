// The per-user job registry: one file per running job in $STATE/jobs/, written by
// the launcher, read by `ckpt ps` / `ckpt kill`. The files hold the job secret, so
// the directory is 0700 and the files 0600. A job whose launcher is gone is dead
// and its entry is removed by whoever lists the jobs next.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { errnoCode } from '../errors.js';
import { JobError, ErrorCodes } from '../errors.js';
import { mkdirPrivate, writeFileAtomic } from '../util/fsx.js';
import { stateDir } from '../util/paths.js';
import { isAlive } from '../util/signals.js';

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
  ranks: { rank: number; pid: number | null }[];
  state: JobState;
  startedAt: number;
}

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
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return Number(fields[19]);
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
    let record: JobRecord;
    try {
      record = JSON.parse(readFileSync(path, 'utf8')) as JobRecord;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue;
      rmSync(path, { force: true }); // unreadable: a torn write of a dead launcher
      continue;
    }
    if (isJobAlive(record)) {
      jobs.push(record);
      continue;
    }
    rmSync(path, { force: true });
    // Only ever a directory this job made: $TMP/ckpt-<id>-XXXXXX.
    if (record.dir && basename(record.dir).startsWith(`ckpt-${record.id}-`)) rmSync(record.dir, { recursive: true, force: true });
  }
  return jobs.sort((a, b) => a.startedAt - b.startedAt);
}

/** A job by id, unique id prefix, or name. */
export function findJob(query: string): JobRecord {
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

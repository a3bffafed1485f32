// The snapshot manifest: what a snapshot holds and how to bring it back. Written
// last, atomically; a directory without a valid manifest is not a snapshot.
import { hostname } from 'node:os';
import { SnapshotError, ErrorCodes } from '../errors.js';
import { version } from '../version.js';
import type { FileEntry } from './checksum.js';
import type { PackedRank } from './pack.js';

export const MANIFEST_NAME = 'manifest.json';
export const MANIFEST_FORMAT = 'ckpt-snapshot';
export const MANIFEST_VERSION = 1;

export type EndState = 'continue' | 'stop' | 'terminate';
export type NetworkLockName = 'nftables' | 'skip';
const isLockName = (x: unknown): boolean => x === undefined || x === 'nftables' || x === 'skip';

export interface ProcessRecord {
  pid: number;
  /** Every pid of the dumped tree at dump time, root first. */
  tree: number[];
  argv: string[];
  cwd: string;
  /** The environment a fresh restart (self/none) starts the program with (secrets withheld: store/env.ts). */
  env: Record<string, string>;
  /** Variables whose values were not recorded: a restart takes them from its own environment. */
  envWithheld?: string[];
  /** What fds 0, 1 and 2 pointed at (`pipe:[12]`, `/dev/null`…): restore rewires them. */
  stdio: (string | null)[];
  /** CRIU options the restore must repeat. */
  shellJob?: boolean;
  tcpEstablished?: boolean;
  /**
   * How CRIU kept the network still around the dump: `nftables` (a tree with TCP
   * sockets), or `skip` (none: no lock needed, and none is taken — it costs a few
   * hundred ms here). Absent in older snapshots: nftables.
   */
  networkLock?: NetworkLockName;
  /**
   * Regular files the tree held open for writing at the dump (stdio and other fds):
   * they may grow after it, so a restore hands in a descriptor opened for appending.
   */
  files?: RecordedFile[];
  uid: number;
  /** Present when the snapshot holds an isolated job (ckpt run --isolate): a whole tree with its namespaces. */
  isolation?: IsolationRecord;
}

export interface RecordedFile {
  /** Absolute path at the dump (CRIU's inherit-fd key is this path without its leading `/`). */
  path: string;
  /** Which process of the tree held it, and on which fds (1, 2: stdout, stderr). */
  pid: number;
  fds: number[];
  /** Opened with O_APPEND (CRIU does not check the size of such a file). */
  append: boolean;
  /** Size at the dump. */
  size: number;
}

export interface IsolationRecord {
  /** The job name it was taken from. */
  name: string;
  /** It had its own network namespace (restored copies can then run side by side). */
  net: boolean;
  /** Mount point of the job's output directory inside its mount namespace… */
  ioMount: string;
  /** …and CRIU's external key for that bind mount (the restore maps it to a fresh directory). */
  ioKey: string;
  /** The dump's CRIU run id: it names the nftables table that locks the job's connections. */
  dumpRunId?: string;
  /** Its periodic checkpoints (`--interval`, ms) and retention (`--keep`): `ckpt restart` resumes them. */
  schedule?: IsolatedSchedule;
}

export interface IsolatedSchedule {
  intervalMs: number;
  keep?: number;
}

interface ManifestBase {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  seq: number;
  createdAt: string;
  committedAt: string;
  ckptVersion: string;
  crs: { name: string; version: string };
  host: string;
  endState: EndState;
  /** Component-specific facts (e.g. the name of the self state file). */
  data: Record<string, unknown>;
  files: FileEntry[];
}

/** One process (tree), checkpointed by itself or from outside. */
export interface ProcessManifest extends ManifestBase {
  kind: 'process';
  /** Who took it: the process itself (`checkpoint()`), or ckpt from outside. */
  origin: 'self' | 'external';
  process: ProcessRecord;
}

/** How a job was launched: what a restart launches again. */
export interface JobRecord {
  id: string;
  name: string;
  size: number;
  oob: 'unix' | 'tcp';
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  /** As for a process: names of variables whose values were not recorded. */
  envWithheld?: string[];
  /** Its periodic checkpoints (`--interval`, ms) and retention (`--keep`): a restart resumes them. */
  intervalMs?: number;
  keep?: number;
}

/**
 * One rank of a job snapshot. The store knows its common fields and a self rank's
 * pack slices (checked against the files); the checkpointer that made the snapshot
 * adds and validates its own fields (crs/<name>/job.ts: validateRank).
 */
export interface RankRecord {
  rank: number;
  pid: number;
  /** The rank's files, relative to the snapshot: `rank-N` (none for a packed rank). */
  dir: string;
  /** self, a small rank: its state is a slice of a pack file shared by the job's small ranks. */
  packed?: PackedRank;
  /** The node it ran on, for a job across nodes (its pid is its pid there). */
  node?: string;
  /** The component's own fields (self: safePoint; criu: tree, stdio, rejoin, shellJob, networkLock). */
  [field: string]: unknown;
}

/** A global snapshot of an N-rank job, taken by the coordinator. */
export interface JobManifest extends ManifestBase {
  kind: 'job';
  origin: 'coordinated';
  job: JobRecord;
  ranks: RankRecord[];
}

export type Manifest = ProcessManifest | JobManifest;

/** A process snapshot's manifest before commit: the fields every origin fills the same way. */
export function processManifestDraft(fields: {
  createdAt: string;
  crs: { name: string; version: string };
  host?: string;
  endState: EndState;
  origin: ProcessManifest['origin'];
  process: ProcessRecord;
  data: Record<string, unknown>;
}): ManifestDraft {
  return { format: MANIFEST_FORMAT, version: MANIFEST_VERSION, kind: 'process', ckptVersion: version, ...fields, host: fields.host ?? hostname() };
}

/** What a snapshot holds, in a few words: for listings. */
export function describeManifest(m: Manifest): { what: string; pids: number[]; command: string[] } {
  if (m.kind === 'process') return { what: `pid ${m.process.pid}`, pids: m.process.tree, command: m.process.argv };
  return { what: `job ${m.job.name} (${m.job.size} ranks)`, pids: m.ranks.map((r) => r.pid), command: m.job.argv };
}

type Draft<M> = M extends Manifest ? Omit<M, 'files' | 'committedAt' | 'seq'> : never;
/** A manifest before commit: the store adds the sequence, commit time and file list. */
export type ManifestDraft = Draft<Manifest>;

function fail(what: string): never {
  throw new SnapshotError(ErrorCodes.SNAPSHOT_FORMAT, `invalid manifest: ${what}`);
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
/** A string that can be a command-line word, a path or an environment value: no NUL, which no exec can carry. */
const isArg = (v: unknown): v is string => isStr(v) && !v.includes('\0');
const isEnv = (v: unknown): boolean => isObj(v) && Object.entries(v).every(([k, x]) => isArg(x) && k.length > 0 && !k.includes('=') && !k.includes('\0'));
const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
const isNameList = (v: unknown): boolean => v === undefined || (Array.isArray(v) && v.every((x) => isStr(x) && /^[^=\0]+$/.test(x)));

/** A relative path that stays inside the snapshot: no absolute, no '..', no empty parts. */
export function isSafeRelativePath(p: string): boolean {
  if (!p || p.startsWith('/') || p.includes('\0') || p.includes('\\')) return false;
  return p.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/** Checks every field before anything in the manifest is used (docs/schemas/manifest.schema.json says the same: change both). */
/** Deeper than any manifest ckpt writes (~6 levels), far below what JSON.stringify and a recursive reader survive. */
const MAX_DEPTH = 64;

/** Whether `value` nests objects or arrays deeper than MAX_DEPTH: iterative, so a hostile depth cannot overflow the check itself. */
function tooDeep(value: unknown): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > MAX_DEPTH) return true;
    for (const child of Object.values(v)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return false;
}

export function validateManifest(value: unknown): Manifest {
  if (!isObj(value)) fail('not a JSON object');
  if (tooDeep(value)) fail(`nested deeper than ${MAX_DEPTH} levels`);
  if (value.format !== MANIFEST_FORMAT) fail(`format is ${JSON.stringify(value.format)}, not ${MANIFEST_FORMAT}`);
  if (value.version !== MANIFEST_VERSION) {
    throw new SnapshotError(
      ErrorCodes.SNAPSHOT_FORMAT,
      `unsupported snapshot format version ${JSON.stringify(value.version)} (this ckpt reads version ${MANIFEST_VERSION})`,
    );
  }
  if (value.kind !== 'process' && value.kind !== 'job') fail(`unknown kind ${JSON.stringify(value.kind)}`);
  if (!isInt(value.seq) || value.seq < 1) fail('seq');
  for (const k of ['createdAt', 'committedAt', 'ckptVersion', 'host'] as const) if (!isStr(value[k])) fail(k);
  if (!isObj(value.crs) || !isStr(value.crs.name) || !isStr(value.crs.version)) fail('crs');
  if (!['continue', 'stop', 'terminate'].includes(value.endState as string)) fail('endState');
  if (value.kind === 'process') validateProcess(value);
  else validateJob(value);
  if (!isObj(value.data)) fail('data');
  if (!Array.isArray(value.files)) fail('files');
  const seen = new Set<string>();
  for (const f of value.files) {
    if (!isObj(f) || !isStr(f.path) || !isInt(f.size) || f.size < 0) fail('files entry');
    const xxh = f.xxh64 !== undefined;
    const sha = f.sha256 !== undefined;
    if (xxh === sha) fail(`files entry ${JSON.stringify(f.path)}: exactly one of xxh64 and sha256`);
    if (xxh && !(isStr(f.xxh64) && /^[0-9a-f]{16}$/.test(f.xxh64))) fail(`files entry ${JSON.stringify(f.path)}: xxh64`);
    if (sha && !(isStr(f.sha256) && /^[0-9a-f]{64}$/.test(f.sha256))) fail(`files entry ${JSON.stringify(f.path)}: sha256`);
    if (!isSafeRelativePath(f.path) || f.path === MANIFEST_NAME) {
      throw new SnapshotError(ErrorCodes.SNAPSHOT_PATH, `manifest names a file outside the snapshot: ${JSON.stringify(f.path)}`);
    }
    if (seen.has(f.path)) fail(`duplicate file ${f.path}`);
    seen.add(f.path);
  }
  return value as unknown as Manifest;
}

function validateProcess(value: Record<string, unknown>): void {
  if (value.origin !== 'self' && value.origin !== 'external') fail('origin');
  const p = value.process;
  if (!isObj(p)) fail('process');
  if (!isInt(p.pid) || p.pid <= 1) fail('process.pid');
  if (!Array.isArray(p.tree) || !p.tree.every((x) => isInt(x) && x > 1)) fail('process.tree');
  if (!Array.isArray(p.argv) || !p.argv.every(isArg) || p.argv.length === 0) fail('process.argv');
  if (!isArg(p.cwd)) fail('process.cwd');
  if (!isEnv(p.env)) fail('process.env');
  if (!isNameList(p.envWithheld)) fail('process.envWithheld');
  if (!Array.isArray(p.stdio) || !p.stdio.every((x) => x === null || isStr(x))) fail('process.stdio');
  if (!isInt(p.uid)) fail('process.uid');
  if (!isLockName(p.networkLock)) fail('process.networkLock');
  if (
    p.files !== undefined &&
    !(
      Array.isArray(p.files) &&
      p.files.every(
        (f) =>
          isObj(f) && isStr(f.path) && f.path.startsWith('/') && isInt(f.pid) && f.pid > 1 && Array.isArray(f.fds) &&
          f.fds.every((n) => isInt(n) && n >= 0) && typeof f.append === 'boolean' && isInt(f.size) && f.size >= 0,
      )
    )
  ) fail('process.files');
  if (p.isolation !== undefined) {
    const iso = p.isolation;
    if (!isObj(iso) || !isStr(iso.name) || typeof iso.net !== 'boolean') fail('process.isolation');
    if (!isStr(iso.ioMount) || !iso.ioMount.startsWith('/') || !isStr(iso.ioKey) || !/^[\w.-]+$/.test(iso.ioKey)) fail('process.isolation');
    if (iso.dumpRunId !== undefined && (!isStr(iso.dumpRunId) || !/^[0-9A-Za-z-]+$/.test(iso.dumpRunId))) fail('process.isolation');
    const sch = iso.schedule;
    if (sch !== undefined && (!isObj(sch) || !isInt(sch.intervalMs) || sch.intervalMs < 1 || (sch.keep !== undefined && !(isInt(sch.keep) && sch.keep >= 1)))) fail('process.isolation.schedule');
  }
}

function validateJob(value: Record<string, unknown>): void {
  if (value.origin !== 'coordinated') fail('origin');
  const j = value.job;
  if (!isObj(j)) fail('job');
  if (!isStr(j.id) || !isStr(j.name)) fail('job.id');
  if (!isInt(j.size) || j.size < 1 || j.size > 256) fail('job.size');
  if (j.oob !== 'unix' && j.oob !== 'tcp') fail('job.oob');
  if (!Array.isArray(j.argv) || !j.argv.every(isArg) || j.argv.length === 0) fail('job.argv');
  if (!isArg(j.cwd)) fail('job.cwd');
  if (!isEnv(j.env)) fail('job.env');
  if (!isNameList(j.envWithheld)) fail('job.envWithheld');
  if (j.intervalMs !== undefined && !(isInt(j.intervalMs) && j.intervalMs >= 1)) fail('job.intervalMs');
  if (j.keep !== undefined && !(isInt(j.keep) && j.keep >= 1)) fail('job.keep');
  const ranks = value.ranks;
  if (!Array.isArray(ranks) || ranks.length !== j.size) fail('ranks');
  ranks.forEach((r, i) => {
    if (!isObj(r) || r.rank !== i || !isInt(r.pid) || !isStr(r.dir)) fail(`ranks[${i}]`);
    // A job across nodes: the node the rank ran on (a name, shown by inspect; nothing is done with it).
    if (r.node !== undefined && !(isStr(r.node) && /^[\w.-]{0,255}$/.test(r.node))) fail(`ranks[${i}].node`);
    if (!isSafeRelativePath(r.dir)) throw new SnapshotError(ErrorCodes.SNAPSHOT_PATH, `manifest names a rank directory outside the snapshot: ${JSON.stringify(r.dir)}`);
    if (r.packed !== undefined) validatePacked(r.packed, i, value.files);
  });
}

/** A packed rank's slices must lie inside a pack file the manifest lists (and checksums). */
function validatePacked(p: unknown, i: number, files: unknown): void {
  const slice = (x: unknown): x is [number, number] => Array.isArray(x) && x.length === 2 && x.every((n) => isInt(n) && n >= 0);
  if (!isObj(p) || !isStr(p.file) || !slice(p.state) || !slice(p.library) || typeof p.binary !== 'boolean') fail(`ranks[${i}].packed`);
  if (!isSafeRelativePath(p.file)) throw new SnapshotError(ErrorCodes.SNAPSHOT_PATH, `manifest names a pack file outside the snapshot: ${JSON.stringify(p.file)}`);
  const entry = Array.isArray(files) ? files.find((f) => isObj(f) && f.path === p.file) : undefined;
  if (!isObj(entry) || !isInt(entry.size)) fail(`ranks[${i}].packed: ${p.file} is not among the snapshot's files`);
  for (const [offset, length] of [p.state, p.library]) if (offset + length > (entry.size as number)) fail(`ranks[${i}].packed: a slice ends past ${p.file}`);
}

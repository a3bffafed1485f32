// What each `--json` command prints on success (inside `{ ok: true, … }`): one
// type per command, mirrored by docs/schemas/ckpt-<command>.schema.json (a test
// validates real output against them). Change both together.
import type { EndState, Manifest } from '../store/manifest.js';

/** The checkpointer that made (or restores) a snapshot: the same shape everywhere. */
export interface CrsJson {
  name: string;
  version: string;
}

/** A committed snapshot: its directory, store and sequence number. */
interface SnapshotRef {
  snapshot: string;
  store: string;
  seq: number;
}

/** What every checkpoint reports: the snapshot, who made it, how big, how long. */
interface CheckpointFacts extends SnapshotRef {
  crs: CrsJson;
  endState: EndState;
  files: number;
  bytes: number;
  durationMs: number;
  /** How long the tree was frozen, when the checkpointer says (null: it did not). */
  frozenMs?: number | null;
  bytesPerSecond?: number;
}

export type CheckpointJson =
  | ({ kind: 'process'; pid: number } & CheckpointFacts)
  | ({ kind: 'ranks'; job: string; name: string; size: number; phasesMs?: Record<string, number>; syncMs?: number } & CheckpointFacts)
  | ({ kind: 'isolated'; job: string; name: string; processes: number } & CheckpointFacts)
  | CheckpointNodesJson
  | CheckpointSeriesJson;

/** `ckpt checkpoint JOB --term` of an isolated mpirun job across nodes: each node's snapshot (`HOST/SEQ` in the store). */
export interface CheckpointNodesJson {
  kind: 'isolated-nodes';
  name: string;
  store: string;
  nodes: { host: string; name: string; snapshot: string }[];
  durationMs: number;
}

/** `ckpt checkpoint --pid P --interval S`: the series, when the process exited or it was interrupted. */
export interface CheckpointSeriesJson {
  kind: 'series';
  pid: number;
  store: string;
  ended: 'exited' | 'interrupted';
  checkpoints: number;
  failures: number;
  /** The newest snapshot of the series (null: none was taken). */
  seq: number | null;
  snapshot: string | null;
}

export interface RestartJson {
  kind: 'process' | 'ranks' | 'isolated';
  detached: boolean;
  /** Restored lazily (--lazy): its memory still comes in through CRIU's lazy-pages daemon. */
  lazy: boolean;
  /** With --lazy: that daemon (killed before every page is in, the pages not yet copied read as zeros) and its log. */
  lazyPages?: { pid: number; log: string };
  /** The restored process (a job: its root, or the coordinator of rank jobs). */
  pid: number;
  snapshot: string;
  seq: number;
  crs: CrsJson;
  job?: string;
  name?: string;
  /** A rank job's rank pids, by rank (null: a rank not yet there). */
  pids?: (number | null)[];
}

export interface ResumeJson {
  pid: number;
  /** Every process of the tree that was continued. */
  pids: number[];
  job?: string;
  name?: string;
  /** A rank job: how SIGCONT reached its ranks. */
  via?: 'coordinator' | 'signals';
}

export interface KillJson {
  job: string;
  name: string;
  signal: string | null;
  via: 'coordinator' | 'signals';
}

export interface PsJobJson {
  id: string;
  kind: 'ranks' | 'isolated';
  name: string;
  size: number;
  state: string;
  uptimeMs: number;
  /** The launcher (`ckpt run`) process. */
  pid: number;
  pids: (number | null)[];
  ranks: { rank: number; pid: number | null; node?: string }[];
  oob: string;
  command: string[];
  isolated?: { rootPid: number; net: boolean; restoredFrom: string | null };
}

export type ListedSnapshotJson =
  | { seq: number; snapshot: string; kind: Manifest['kind']; crs: CrsJson; createdAt: string; what: string; bytes: number }
  | { seq: number; snapshot: string; error: string };

export interface DoctorJson {
  /** The checkpointer chosen when none is named (null: none works without the program's help). */
  automatic: string | null;
  checkpointers: {
    name: string;
    priority: number;
    transparent: boolean;
    ok: boolean;
    version?: string;
    reason?: string;
    hint?: string;
    code?: string;
    details?: Record<string, unknown>;
  }[];
  native: { ok: boolean; reason?: string; hint?: string; checksums: string };
  otherUsers: { ok: boolean; isolated: boolean; reason: string; consequence?: string; hint?: string } | null;
}

export type SetupJson =
  | {
      action: 'installed' | 'already-installed' | 'using-system' | 'using-env';
      installed: boolean;
      path: string;
      version: string;
      source: string;
      prefix: string;
      dir?: string;
      packages?: string[];
      message: string;
      note?: string;
    }
  | { path: string; group: string; gid: number; from: string; version: string; capabilities: string; message: string };

/** Every `--json` command by name (a subcommand after a space): its success body. */
export interface JsonOutputs {
  checkpoint: CheckpointJson;
  restart: RestartJson;
  resume: ResumeJson;
  kill: KillJson;
  ps: { jobs: PsJobJson[] };
  'snapshots ls': { store: string; snapshots: ListedSnapshotJson[] };
  'snapshots inspect': { snapshot: string; seq: number; manifest: Manifest };
  'snapshots verify': { snapshot: string; seq: number; files: number; bytes: number; problems: string[] };
  'snapshots rm': { snapshot: string; seq: number; lockTable: string | null };
  'snapshots gc': { removed: { path: string; bytes: number }[]; bytes: number; dryRun?: true };
  doctor: DoctorJson;
  setup: SetupJson;
}

/** Every command with --json output; the compiler checks the list is complete. */
export const JSON_COMMANDS = [
  'checkpoint', 'restart', 'resume', 'kill', 'ps', 'snapshots ls', 'snapshots inspect', 'snapshots verify', 'snapshots rm', 'snapshots gc', 'doctor', 'setup',
] as const satisfies readonly (keyof JsonOutputs)[];
type Unlisted = Exclude<keyof JsonOutputs, (typeof JSON_COMMANDS)[number]>;
const complete: [Unlisted] extends [never] ? true : Unlisted = true;
void complete;

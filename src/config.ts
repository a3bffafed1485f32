// Every CKPT_* environment variable ckpt reads or sets, in one table: its kind (which
// parser reads it), its default, what it means and who sets it. Code reads a variable
// through envNumber/envFlag/envString at call time, from an environment that defaults
// to process.env, so a test that sets a variable sees it take effect. A malformed
// value is a usage error of one line (`CKPT_X must be …, not '…'`); unset and empty
// are the same (the default). The README's table is generated from this one
// (scripts/gen-env-table.mjs). CKPT_FAULT keeps its own parser (util/faults.ts).
import { CkptError, ErrorCodes } from './errors.js';

/**
 * How a value is read: ms, count, int: a whole number (ms: milliseconds) from `min`
 * (default 1; int: 0) up to `max` (ms: by default what a timer can hold); bytes: a byte count from 0 to `max`; flag: 1/0
 * (also true/false, yes/no, on/off); path: an absolute path; enum: one of `values`;
 * string, list (lines): any text.
 */
export type SettingKind = 'ms' | 'count' | 'int' | 'bytes' | 'flag' | 'path' | 'enum' | 'string' | 'list';

/** Who sets it: the user, ckpt itself (for the ranks and programs it starts), or the tests and build scripts. */
export type SetBy = 'user' | 'ckpt' | 'tests' | 'build';

export interface Setting {
  kind: SettingKind;
  /** The value when unset or empty; absent: the reader decides (see `defaultText`). */
  default?: number | boolean | string;
  /** The default as the README shows it. */
  defaultText: string;
  /** One line: what it means. */
  meaning: string;
  setBy: SetBy;
  min?: number;
  max?: number;
  values?: readonly string[];
}

/** Up to this many bytes a rank's saved state travels in its reply (base64 of it stays under the 1 MiB frame limit). */
export const MAX_INLINE_BYTES = 512 << 10;

export const CONFIG = {
  // ---- the user's settings
  CKPT_STATE_DIR: {
    kind: 'path', setBy: 'user', defaultText: '`$XDG_STATE_HOME/ckpt`, else `~/.local/state/ckpt`',
    meaning: 'Per-user state: job registry, logs, default snapshot stores.',
  },
  CKPT_HOME: {
    kind: 'path', setBy: 'user', defaultText: '`/opt/ckpt` (root), else `~/.local/share/ckpt`',
    meaning: 'Where `ckpt setup criu` installs CRIU, and where ckpt looks for that install.',
  },
  CKPT_CRIU: {
    kind: 'path', setBy: 'user', defaultText: 'the private install, else `criu` on `PATH`',
    meaning: 'The CRIU binary to use (only this one, when set). ckpt also sets it for its restore wrapper in isolated restarts.',
  },
  CKPT_CRS: {
    kind: 'enum', values: ['criu', 'self', 'none'], setBy: 'user', defaultText: 'the best available',
    meaning: 'The checkpointer, as `--crs` names it: `criu`, `self` or `none` (never chosen automatically).',
  },
  CKPT_CRIU_LOG_LEVEL: {
    kind: 'int', min: 0, max: 4, default: 3, setBy: 'user', defaultText: '3',
    meaning: "CRIU's log level (0–4) in dump.log and restore.log.",
  },
  CKPT_RESTORE_LOGS_KEEP: {
    kind: 'int', min: 0, default: 10, setBy: 'user', defaultText: '10',
    meaning: 'How many logs of successful restores ($CKPT_STATE_DIR/logs/restore-*) are kept, newest first.',
  },
  CKPT_RESTORE_LOGS_KEEP_FAILED: {
    kind: 'int', min: 0, default: 50, setBy: 'user', defaultText: '50',
    meaning: 'How many logs of failed restores are kept, newest first (one younger than an hour always: it may be a restore under way).',
  },
  CKPT_ISOLATE_USERNS: {
    kind: 'flag', default: true, setBy: 'user', defaultText: '1',
    meaning: '`ckpt run --isolate` runs the job in a user namespace owned by root; 0 leaves it out.',
  },
  CKPT_NO_NATIVE: {
    kind: 'flag', default: false, setBy: 'user', defaultText: '0',
    meaning: 'Behave as if the native addon were not built (diagnosis, benchmarks, tests).',
  },
  CKPT_COMMIT_OVERLAP: {
    kind: 'flag', default: true, setBy: 'user', defaultText: '1',
    meaning: "A bench switch: 0 makes a CRIU dump's commit wait for the dump (no checksums nor writeback of page images while CRIU writes them).",
  },
  CKPT_DEBUG: {
    kind: 'flag', default: false, setBy: 'user', defaultText: '0',
    meaning: "The CLI prints an error's stack trace after its one line.",
  },
  // ---- timeouts and limits (milliseconds unless said otherwise)
  CKPT_HELLO_TIMEOUT_MS: {
    kind: 'ms', default: 10_000, setBy: 'user', defaultText: '10000',
    meaning: "How long a new connection to any of a job's listeners has to present a valid hello (ms).",
  },
  CKPT_CHECKPOINT_PHASE_MS: {
    kind: 'ms', default: 30_000, setBy: 'user', defaultText: '30000',
    meaning: "Timeout of each phase of a job's checkpoint (ms).",
  },
  CKPT_CHECKPOINT_REACH_MS: {
    kind: 'ms', default: 60_000, setBy: 'user', defaultText: '60000',
    meaning: "Timeout of a job checkpoint's reach phase: every rank at the same safe point (ms).",
  },
  CKPT_CHECKPOINT_DUMP_MS: {
    kind: 'ms', setBy: 'user', defaultText: '120000, or the phase timeout if longer',
    meaning: "Timeout of a criu job checkpoint's dump phase: every rank dumped and back (ms).",
  },
  CKPT_DUMP_CONCURRENCY: {
    kind: 'count', setBy: 'user', defaultText: 'all ranks',
    meaning: "How many of a job's ranks CRIU dumps at once.",
  },
  CKPT_SELF_INLINE_BYTES: {
    kind: 'bytes', max: MAX_INLINE_BYTES, default: 64 << 10, setBy: 'user', defaultText: '65536',
    meaning: "Up to this many bytes a rank's saved state travels in its reply instead of files (0: always files).",
  },
  CKPT_RESTORE_TIMEOUT_MS: {
    kind: 'ms', default: 120_000, setBy: 'user', defaultText: '120000',
    meaning: 'How long a CRIU restore (a process, a rank, an isolated job) may take before CRIU and what it restored are ended and cleaned up (ms).',
  },
  CKPT_TIMEOUT_MS: {
    kind: 'ms', min: 0, default: 600_000, setBy: 'user', defaultText: '600000',
    meaning: "Default timeout of every wait in the rank library (ms; 0: none); `ckpt run --timeout` sets it for the ranks.",
  },
  CKPT_JOIN_TIMEOUT_MS: {
    kind: 'ms', default: 70_000, setBy: 'user', defaultText: '70000',
    meaning: 'How long a rank waits for the other ranks to join (ms); `ckpt run --join-timeout` sets it for the ranks.',
  },
  CKPT_CONNECT_TIMEOUT_MS: {
    kind: 'ms', default: 10_000, setBy: 'user', defaultText: '10000',
    meaning: "How long a rank tries to connect to its job's coordinator (ms).",
  },
  // ---- set by ckpt for the ranks and programs it starts
  CKPT_JOB_ID: {
    kind: 'string', setBy: 'ckpt', defaultText: '—',
    meaning: "The job's id (8 hex digits); unset, a program is a singleton (rank 0 of 1).",
  },
  CKPT_RANK: {
    kind: 'count', min: 0, setBy: 'ckpt', defaultText: '—',
    meaning: 'This rank, 0 … N-1.',
  },
  CKPT_SIZE: {
    kind: 'count', setBy: 'ckpt', defaultText: '—',
    meaning: 'The number of ranks N.',
  },
  CKPT_COORD: {
    kind: 'string', setBy: 'ckpt', defaultText: '—',
    meaning: "The coordinator's address (`unix:PATH` or `tcp:HOST:PORT`).",
  },
  CKPT_PEER_HOST: {
    kind: 'string', setBy: 'ckpt', defaultText: 'loopback when the coordinator is, else the host name\'s address',
    meaning: "The address a rank listens on for its peers and hands out (set by whoever starts the rank on its node; `0.0.0.0`: listen everywhere).",
  },
  CKPT_AGENT_COORD: {
    kind: 'string', setBy: 'ckpt', defaultText: '—',
    meaning: "A node agent (a job across nodes under Slurm): the coordinator's address it connects to.",
  },
  CKPT_AGENT_BIND: {
    kind: 'string', setBy: 'ckpt', defaultText: "the node's host name's address",
    meaning: "A node agent: the interface (or address) its node's ranks listen on (`ckpt run --bind`).",
  },
  CKPT_AGENT_PIDNS: {
    kind: 'flag', default: true, setBy: 'user', defaultText: '1 (as root)',
    meaning: 'Under `--launcher slurm`, 0: node agents do not run in a pid namespace of their own (criu ranks restored on another node may then find their pids taken).',
  },
  CKPT_JOB_SECRET: {
    kind: 'string', setBy: 'ckpt', defaultText: '—',
    meaning: 'Proves membership of the job on every connection; never recorded in a snapshot.',
  },
  CKPT_RESTART_SNAPSHOT: {
    kind: 'path', setBy: 'ckpt', defaultText: '—',
    meaning: 'In a process started afresh from a snapshot (self, none, a restarted rank): the snapshot it resumes from.',
  },
  CKPT_SELF_FD: {
    kind: 'count', min: 0, setBy: 'ckpt', defaultText: '—',
    meaning: 'Self protocol: the control descriptor (3) of a program run by `ckpt-self`.',
  },
  CKPT_SELF_PROTOCOL: {
    kind: 'string', setBy: 'ckpt', defaultText: '—',
    meaning: "Self protocol: the protocol's version (1).",
  },
  CKPT_SELF_RESTORE: {
    kind: 'path', setBy: 'ckpt', defaultText: '—',
    meaning: 'Self protocol, in a restarted run: the file holding the saved state.',
  },
  CKPT_SELF_STORE: {
    kind: 'path', setBy: 'ckpt', defaultText: '—',
    meaning: 'Self protocol, outside a job: the snapshot store (informational).',
  },
  CKPT_ISO_IO: {
    kind: 'path', setBy: 'ckpt', defaultText: '—',
    meaning: "Isolated jobs: the output directory's host path, for the namespace's init script.",
  },
  CKPT_ISO_CWD: {
    kind: 'path', setBy: 'ckpt', defaultText: '—',
    meaning: "Isolated jobs: the job's working directory, for the namespace's init script.",
  },
  CKPT_ISO_NET: {
    kind: 'flag', default: false, setBy: 'ckpt', defaultText: '0',
    meaning: 'Isolated jobs: 1 when the job has a network namespace of its own.',
  },
  CKPT_ISO_PATH: {
    kind: 'string', setBy: 'ckpt', defaultText: '—',
    meaning: "Isolated jobs: the job's own PATH, given back to its program (the set-up runs with the part of it root can trust).",
  },
  CKPT_UNCOVER: {
    kind: 'list', setBy: 'ckpt', defaultText: '—',
    meaning: 'Isolated restarts in a user namespace: the host mounts the restore wrapper uncovers, one a line.',
  },
  // ---- tests and build
  CKPT_FAULT: {
    kind: 'string', setBy: 'tests', defaultText: '—',
    meaning: 'Fault points: `point:who:action[@n]`, comma-separated (parsed by src/util/faults.ts; docs/TESTING.md).',
  },
  CKPT_FAULT_DIR: {
    kind: 'path', setBy: 'tests', defaultText: '— (required by a gate)',
    meaning: "A private directory where a `gate` fault point creates its marker file.",
  },
  CKPT_TEST_FILTER: {
    kind: 'string', setBy: 'tests', defaultText: 'all files',
    meaning: '`scripts/run-tests.mjs` runs only the test files whose path contains this text.',
  },
  CKPT_REQUIRE_CRIU: {
    kind: 'flag', default: false, setBy: 'tests', defaultText: '0',
    meaning: 'Tests that need CRIU fail without it instead of skipping (CI).',
  },
  CKPT_REQUIRE_SLURM: {
    kind: 'flag', default: false, setBy: 'tests', defaultText: '0',
    meaning: 'Tests of the Slurm integration fail without Slurm instead of skipping (CI).',
  },
  CKPT_SLURM_KEEP: {
    kind: 'flag', default: false, setBy: 'tests', defaultText: '0',
    meaning: "Keep a Slurm test cluster's directory (configuration, logs) after the test.",
  },
  CKPT_NATIVE_REQUIRED: {
    kind: 'flag', default: false, setBy: 'build', defaultText: '0',
    meaning: '`npm install` fails when the native addon does not build (CI).',
  },
  CKPT_SKIP_NATIVE: {
    kind: 'flag', default: false, setBy: 'build', defaultText: '0',
    meaning: '`npm install` does not build the native addon.',
  },
} as const satisfies Record<string, Setting>;

export type SettingName = keyof typeof CONFIG;
type NameOfKind<K extends SettingKind> = { [N in SettingName]: (typeof CONFIG)[N]['kind'] extends K ? N : never }[SettingName];
/** T when the table gives the variable a default, else T | undefined. */
type Value<N extends SettingName, T> = (typeof CONFIG)[N] extends { default: unknown } ? T : T | undefined;

export type NumberName = NameOfKind<'ms' | 'count' | 'int' | 'bytes'>;
export type FlagName = NameOfKind<'flag'>;
export type StringName = NameOfKind<'path' | 'enum' | 'string' | 'list'>;

type Env = Readonly<Record<string, string | undefined>>;

/** A number variable's value: what is set, else the table's default (undefined if it has none). */
export function envNumber<N extends NumberName>(name: N, env: Env = process.env): Value<N, number> {
  return readSetting(name, env) as Value<N, number>;
}

/** A flag's value: what is set, else the table's default (false if it has none). */
export function envFlag(name: FlagName, env: Env = process.env): boolean {
  return (readSetting(name, env) as boolean | undefined) ?? false;
}

/** A path, enum, string or list variable: what is set, else the table's default (undefined if it has none). */
export function envString<N extends StringName>(name: N, env: Env = process.env): Value<N, string> {
  return readSetting(name, env) as Value<N, string>;
}

/**
 * Every variable a user may set, parsed: the first malformed one throws its usage error.
 * A launcher checks them before it starts anything: its ranks and agents read them too,
 * where a bad one could only end each of them with its own error.
 */
export function checkSettings(env: Env = process.env): void {
  for (const name of Object.keys(CONFIG) as SettingName[]) if (CONFIG[name].setBy === 'user') readSetting(name, env);
}

/** Any variable of the table, parsed by its kind; unset or empty: its default. */
export function readSetting(name: SettingName, env: Env = process.env): number | boolean | string | undefined {
  const spec: Setting = CONFIG[name];
  const text = env[name];
  if (text === undefined || text === '') return spec.default;
  return parseSetting(name, spec, text);
}

const TRUE = ['1', 'true', 'yes', 'on'];
const FALSE = ['0', 'false', 'no', 'off'];

function parseSetting(name: string, spec: Setting, text: string): number | boolean | string {
  const bad = (what: string): CkptError => new CkptError(ErrorCodes.USAGE, `${name} must be ${what}, not '${text}'`);
  switch (spec.kind) {
    case 'ms':
    case 'count':
    case 'int':
    case 'bytes': {
      const min = spec.kind === 'bytes' ? 0 : (spec.min ?? (spec.kind === 'int' ? 0 : 1));
      const n = /^\d+$/.test(text) ? Number(text) : NaN;
      if (Number.isSafeInteger(n) && n >= min && n <= (maxOf(spec) ?? Number.MAX_SAFE_INTEGER)) return n;
      throw bad(numberRule(spec, min));
    }
    case 'flag': {
      const v = text.toLowerCase();
      if (TRUE.includes(v)) return true;
      if (FALSE.includes(v)) return false;
      throw bad('1 or 0');
    }
    case 'path':
      if (text.startsWith('/')) return text;
      throw bad('an absolute path');
    case 'enum':
      if (spec.values?.includes(text)) return text;
      throw bad(`one of ${spec.values?.join(', ')}`);
    case 'string':
    case 'list':
      return text;
  }
}

/** The longest a Node timer can wait (2^31 − 1 ms): a longer one fires at once, a timeout before anything could happen. */
export const MAX_TIMER_MS = 0x7fffffff;

const maxOf = (spec: Setting): number | undefined => spec.max ?? (spec.kind === 'ms' ? MAX_TIMER_MS : undefined);

/** What a number variable must be, as the error says it. */
function numberRule(spec: Setting, min: number): string {
  if (spec.kind === 'bytes') return `a byte count from 0 to ${spec.max ?? Number.MAX_SAFE_INTEGER}`;
  const unit = spec.kind === 'ms' ? ' of milliseconds' : '';
  const max = maxOf(spec);
  if (max !== undefined) return `a whole number${unit} from ${min} to ${max}`;
  return min === 1 ? `a positive whole number${unit}` : `a whole number${unit} from ${min} up`;
}

// Hooks around a checkpoint: prepare runs before the snapshot; continue or restart
// after it, in registration order, each awaited.
import { UsageError } from '../errors.js';
export type CheckpointState = 'continue' | 'restart';

export interface CheckpointResult {
  state: CheckpointState;
  /** The checkpointer that made the snapshot. */
  crs: string;
  /** This process's pid now. */
  pid: number;
  /** The pid of the process that was checkpointed (equal to pid when continuing). */
  previousPid: number;
  hostname: string;
  previousHostname: string;
  snapshot: { store: string; seq: number; dir: string };
  /**
   * onContinue only: the checkpoint failed or was aborted after onPrepare ran, and
   * no snapshot was taken (`snapshot` names the one that was not). The hook undoes
   * what onPrepare did, as after a checkpoint that succeeded.
   */
  aborted?: boolean;
}

export interface PrepareInfo {
  crs: string;
  store: string;
  seq: number;
}

type Hook<T> = (info: T) => void | Promise<void>;

const hooks = {
  prepare: [] as Hook<PrepareInfo>[],
  continue: [] as Hook<CheckpointResult>[],
  restart: [] as Hook<CheckpointResult>[],
};

function add<T>(list: Hook<T>[], hook: Hook<T>): () => void {
  if (typeof hook !== 'function') throw new UsageError('a hook must be a function');
  list.push(hook);
  return () => {
    const i = list.indexOf(hook);
    if (i >= 0) list.splice(i, 1);
  };
}

/** Runs before every checkpoint: quiesce what cannot be snapshotted. Returns a remover. */
export const onPrepare = (hook: Hook<PrepareInfo>): (() => void) => add(hooks.prepare, hook);
/** Runs in the original process after a checkpoint, and after one that failed once onPrepare had run (`aborted`). Returns a remover. */
export const onContinue = (hook: Hook<CheckpointResult>): (() => void) => add(hooks.continue, hook);
/** Runs in a process restarted from a snapshot: refresh pids, hosts, connections. Returns a remover. */
export const onRestart = (hook: Hook<CheckpointResult>): (() => void) => add(hooks.restart, hook);

export async function runHooks<K extends keyof typeof hooks>(
  kind: K,
  info: Parameters<(typeof hooks)[K][number]>[0],
): Promise<void> {
  for (const hook of [...hooks[kind]]) await (hook as Hook<typeof info>)(info);
}

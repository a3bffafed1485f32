// The `self` checkpointer: application-level checkpoints. The program registers
// save() and load(); a checkpoint stores what save() returns, a restart starts the
// program afresh and hands that back to load().
import { lstatSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CkptError, ErrorCodes, UsageError } from '../../errors.js';
import { callSave } from './saved-state.js';
import { version } from '../../version.js';
import { PRIVATE_FILE_MODE } from '../../util/fsx.js';
import { restartFresh } from '../fresh-start.js';
import type { Checkpointer } from '../types.js';

export type SelfState = unknown;

/** The program's state of type `T` (inferred from what save() returns): load() gets it back typed so. */
export interface SelfCallbacks<T = SelfState> {
  /** Returns the program's state: JSON-serialisable, or a Uint8Array. */
  save(): T | Promise<T>;
  /** Receives what save() returned, in a freshly restarted process. */
  load(state: T): void | Promise<void>;
}

/**
 * State kept in a file its owner writes and reads itself: a program outside Node,
 * through the line protocol (`protocol.ts`, docs/SELF-PROTOCOL.md).
 */
export interface SelfFileCallbacks {
  /** Has the whole state written to `path` (a new file of the pending snapshot); resolves once it is complete. */
  saveFile(path: string): Promise<void>;
  /** Has the state read from `path` (the snapshot's file, through its checked descriptor); resolves once it is read. */
  loadFile(path: string): Promise<void>;
}

let callbacks: SelfCallbacks | undefined;
let fileCallbacks: SelfFileCallbacks | undefined;

/**
 * Registers the program's save/load callbacks (replacing earlier ones). `T`, the
 * state's type, is inferred from save(): `registerSelf({ save: () => state, load: (s) => void (state = s) })`
 * type-checks under `--strict`. What load() receives is what a snapshot holds: as
 * trustworthy as the snapshot (JSON of that shape when it was written by this program).
 */
export function registerSelf<T = SelfState>(cb: SelfCallbacks<T>): void {
  if (typeof cb?.save !== 'function' || typeof cb?.load !== 'function') {
    throw new UsageError('registerSelf({ save, load }) needs two functions');
  }
  callbacks = cb as SelfCallbacks;
  fileCallbacks = undefined;
}

/** @internal Registers file callbacks instead (the launcher of programs outside Node). */
export function registerSelfFiles(cb: SelfFileCallbacks): void {
  if (typeof cb?.saveFile !== 'function' || typeof cb?.loadFile !== 'function') {
    throw new UsageError('registerSelfFiles({ saveFile, loadFile }) needs two functions');
  }
  fileCallbacks = cb;
  callbacks = undefined;
}

/** The registered callbacks (the rank library saves and loads through them too). */
export function selfCallbacks(): SelfCallbacks | undefined {
  return callbacks;
}

export function selfRegistered(): boolean {
  return callbacks !== undefined || fileCallbacks !== undefined;
}

/** The names of a self snapshot's state file (a single process's, and a large rank's). */
export const STATE_JSON = 'state.json';
export const STATE_BIN = 'state.bin';

/** Reads a self snapshot's saved state and hands it to load(). */
export async function loadSelfState(snapshotDir: string, data: Record<string, unknown>): Promise<void> {
  if (fileCallbacks) {
    await fileCallbacks.loadFile(join(snapshotDir, data.state === STATE_JSON ? STATE_JSON : STATE_BIN));
    return;
  }
  if (!callbacks) {
    throw new CkptError(ErrorCodes.SELF_NOT_REGISTERED, 'restarting from a self snapshot, but no load() callback is registered', {
      hint: 'call registerSelf({ save, load }) before checkpoint()',
    });
  }
  const file = data.state === STATE_BIN ? STATE_BIN : STATE_JSON;
  const raw = readFileSync(join(snapshotDir, file));
  await callbacks.load(file === STATE_BIN ? new Uint8Array(raw) : JSON.parse(raw.toString('utf8')));
}

export const selfCheckpointer: Checkpointer = {
  name: 'self',
  priority: 20,
  transparent: false,

  async probe() {
    return { ok: true, version };
  },

  loadState: loadSelfState,

  async checkpointSelf(request) {
    if (fileCallbacks) {
      // The owner writes the file itself, through the pending snapshot's descriptor;
      // the commit makes it private, syncs and checksums it like any other.
      const path = join(request.pending.dir, STATE_BIN);
      await fileCallbacks.saveFile(path);
      let regular = false;
      try {
        regular = lstatSync(path).isFile();
      } catch {}
      if (!regular) {
        throw new CkptError(ErrorCodes.CHECKPOINT_FAILED, 'the program reported its state saved, but wrote no state file', {
          hint: 'write the state to the path of the `save` request, then answer `saved` (docs/SELF-PROTOCOL.md)',
        });
      }
      return { state: 'continue', data: { state: STATE_BIN } };
    }
    if (!callbacks) {
      throw new CkptError(ErrorCodes.SELF_NOT_REGISTERED, 'the self checkpointer needs save() and load() callbacks', {
        hint: 'call registerSelf({ save, load }) first',
      });
    }
    const registered = callbacks;
    const { binary, bytes } = await callSave(() => registered.save());
    const file = binary ? STATE_BIN : STATE_JSON;
    writeFileSync(join(request.pending.dir, file), bytes, { mode: PRIVATE_FILE_MODE });
    return { state: 'continue', data: { state: file } };
  },

  restart: restartFresh,
};

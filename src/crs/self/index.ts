// The `self` checkpointer: application-level checkpoints. The program registers
// save() and load(); a checkpoint stores what save() returns, a restart starts the
// program afresh and hands that back to load().
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CkptError, ErrorCodes } from '../../errors.js';
import { version } from '../../version.js';
import { PRIVATE_FILE_MODE } from '../../util/fsx.js';
import { restartFresh } from '../fresh-start.js';
import type { Checkpointer } from '../types.js';

export type SelfState = unknown;

export interface SelfCallbacks {
  /** Returns the program's state: JSON-serialisable, or a Uint8Array. */
  save(): SelfState | Promise<SelfState>;
  /** Receives what save() returned, in a freshly restarted process. */
  load(state: SelfState): void | Promise<void>;
}

let callbacks: SelfCallbacks | undefined;

/** Registers the program's save/load callbacks (replacing earlier ones). */
export function registerSelf(cb: SelfCallbacks): void {
  if (typeof cb?.save !== 'function' || typeof cb?.load !== 'function') {
    throw new TypeError('registerSelf({ save, load }) needs two functions');
  }
  callbacks = cb;
}

/** The registered callbacks (the rank library saves and loads through them too). */
export function selfCallbacks(): SelfCallbacks | undefined {
  return callbacks;
}

export function selfRegistered(): boolean {
  return callbacks !== undefined;
}

const STATE_JSON = 'state.json';
const STATE_BIN = 'state.bin';

/** Reads a self snapshot's saved state and hands it to load(). */
export async function loadSelfState(snapshotDir: string, data: Record<string, unknown>): Promise<void> {
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

  async checkpointSelf(request) {
    if (!callbacks) {
      throw new CkptError(ErrorCodes.SELF_NOT_REGISTERED, 'the self checkpointer needs save() and load() callbacks', {
        hint: 'call registerSelf({ save, load }) first',
      });
    }
    const state = await callbacks.save();
    const binary = state instanceof Uint8Array;
    const file = binary ? STATE_BIN : STATE_JSON;
    const bytes = binary ? state : JSON.stringify(state ?? null);
    writeFileSync(join(request.pending.dir, file), bytes, { mode: PRIVATE_FILE_MODE });
    return { state: 'continue', data: { state: file } };
  },

  restart: restartFresh,
};

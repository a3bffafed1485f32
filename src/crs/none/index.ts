// The `none` checkpointer: saves no state. Its snapshot records only the command
// line; a restart runs the program again from the beginning. Never chosen
// automatically (see registry.ts): only by name (`--crs none`, CKPT_CRS=none).
import { version } from '../../version.js';
import { restartFresh } from '../fresh-start.js';
import type { Checkpointer } from '../types.js';

export const noneCheckpointer: Checkpointer = {
  name: 'none',
  priority: 0,
  transparent: false,
  async probe() {
    return { ok: true, version };
  },
  async checkpointSelf() {
    return { state: 'continue', data: {} };
  },
  restart: restartFresh,
};

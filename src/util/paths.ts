// Where ckpt keeps its per-user state (job registry, logs, private CRIU).
import { homedir } from 'node:os';
import { join } from 'node:path';
import { envString } from '../config.js';

/** Per-user state: $CKPT_STATE_DIR, else $XDG_STATE_HOME/ckpt, else ~/.local/state/ckpt. */
export function stateDir(): string {
  const dir = envString('CKPT_STATE_DIR');
  if (dir) return dir;
  const xdg = process.env.XDG_STATE_HOME;
  return join(xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.local', 'state'), 'ckpt');
}

/** Where root's `ckpt setup criu` installs CRIU. */
export const ROOT_TOOLS_DIR = '/opt/ckpt';

/** Where `ckpt setup criu` installs CRIU: $CKPT_HOME or /opt/ckpt (root) / ~/.local/share/ckpt. */
export function toolsDir(): string {
  const home = envString('CKPT_HOME');
  if (home) return home;
  return process.getuid?.() === 0 ? ROOT_TOOLS_DIR : join(homedir(), '.local', 'share', 'ckpt');
}

export function logsDir(): string {
  return join(stateDir(), 'logs');
}

// The native addon (native/ckpt_native.c), built by `npm install` into build/Release.
import { createRequire } from 'node:module';
import { CkptError, ErrorCodes } from '../errors.js';

export interface NativeAddon {
  seqpacketPair(): [number, number];
  send(fd: number, data: Uint8Array): number;
  recv(fd: number): Promise<Buffer | null>;
  close(fd: number): void;
  shutdown(fd: number): void;
  waitpid(pid: number): Promise<{ code: number | null; signal: number | null }>;
  /** null while the child runs; its status once it has exited (and is reaped). */
  waitpidNoHang(pid: number): { code: number | null; signal: number | null } | null;
  /** A close-on-exec pipe: [read end, write end]. */
  pipe(): [number, number];
  /** Makes the calling process lead a new session; returns its id (throws EPERM for a group leader). */
  setsid(): number;
  /** A close-on-exec duplicate of `fd`. */
  dup(fd: number): number;
}

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  try {
    addon = require('../../build/Release/ckpt_native.node') as NativeAddon;
  } catch (cause) {
    throw new CkptError(ErrorCodes.NATIVE, 'the native addon is not built', {
      cause,
      hint: 'run `npm install` (needs python3, make and a C compiler)',
    });
  }
  return addon;
}

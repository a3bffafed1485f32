// The native addon (native/ckpt_native.c), built by the package's install script into
// build/Release when a C toolchain is there. It is optional: only CRIU needs it
// (SEQPACKET sockets for CRIU's RPC, waitpid of restored processes, pipes handed to
// them, setsid before a self-dump). `self` and `none` work without it, and checksums
// fall back to WebAssembly (src/store/checksum.ts). `ckpt doctor` says which is used.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { CkptError, ErrorCodes } from '../errors.js';
import { envFlag } from '../config.js';
import { packageRoot } from './package-root.js';

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

/** CKPT_NO_NATIVE=1: behave as if the addon were not built (tests, benchmarks, diagnosis). */
export function nativeDisabled(): boolean {
  return envFlag('CKPT_NO_NATIVE');
}

/**
 * What to run to build the addon, for the situation ckpt is in: a dependency of
 * another project (npm or pnpm), or a clone of ckpt itself.
 */
export function nativeBuildHint(): string {
  const root = packageRoot();
  const asDependency = /[/\\]node_modules[/\\]/.test(root);
  const needs = 'needs python3, make and a C compiler';
  if (!asDependency) return `run \`npm install\` (or \`npm run build\`) in ${root.replace(/\/$/, '')} (${needs})`;
  const pnpm = /[/\\]node_modules[/\\]\.pnpm[/\\]/.test(root);
  return pnpm
    ? `run \`pnpm approve-builds\` (allow ckpt), then \`pnpm rebuild ckpt\` (${needs})`
    : `run \`npm rebuild ckpt\` in your project (${needs}; with pnpm: \`pnpm approve-builds\`, then \`pnpm rebuild ckpt\`)`;
}

export interface NativeStatus {
  ok: boolean;
  /** Why it cannot be loaded (not built, disabled, a broken build). */
  reason?: string;
  hint?: string;
}

let addon: NativeAddon | undefined;
let failure: CkptError | undefined;

/** The addon, or ECKPT_NATIVE saying why not and what to run. */
export function native(): NativeAddon {
  if (addon) return addon;
  if (failure) throw failure;
  const file = `${packageRoot()}build/Release/ckpt_native.node`;
  if (nativeDisabled()) {
    failure = new CkptError(ErrorCodes.NATIVE, 'the native addon is disabled (CKPT_NO_NATIVE)', { hint: 'unset CKPT_NO_NATIVE' });
    throw failure;
  }
  try {
    addon = createRequire(import.meta.url)(file) as NativeAddon;
  } catch (cause) {
    const built = existsSync(file);
    failure = new CkptError(ErrorCodes.NATIVE, built ? `the native addon does not load: ${(cause as Error).message.split('\n')[0]}` : 'the native addon is not built', {
      cause,
      hint: nativeBuildHint(),
    });
    throw failure;
  }
  return addon;
}

/** Whether the addon loads, without throwing (`ckpt doctor`). */
export function nativeStatus(): NativeStatus {
  try {
    native();
    return { ok: true };
  } catch (err) {
    const e = err as CkptError;
    return { ok: false, reason: e.message, hint: e.hint };
  }
}

/** What works without the addon, and what does not: for `ckpt doctor`. */
export const NATIVE_LOSS =
  'without it: no CRIU checkpointer (transparent checkpoints, criu jobs, isolated jobs); checksums use WebAssembly; self and none work';

// CRIU's lazy-pages daemon, for a post-copy restore (`ckpt restart --lazy`): the
// restore maps the memory of the tree but copies none of it; the daemon holds the
// tree's userfaultfds and fills each page on its first touch, and the rest in the
// background, then exits (also once the tree is gone). Until then the restored
// process depends on it: if it dies, the kernel drops the userfaultfd's ranges and
// every page not yet copied reads as zeros (measured: the process segfaulted in libc
// at its next look at such a page; it could as well go on with wrong data).
//
// It is started before the restore, in a session of its own, with the restore's
// private work directory (0700) as its own: its socket (`lazy-pages.socket`, which the
// restore connects to by that relative name from the same directory) and its log go
// there. It reads the images by the path the restore uses: through ckpt's descriptor
// of the checked snapshot directory, opened by the daemon at its start.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, lstatSync, openSync, rmSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { CriuError, ErrorCodes } from '../../errors.js';
import { criuFeatures } from '../../criu/client.js';
import { cachedFeature, recordFeature } from '../../criu/locate/check-cache.js';
import { unprivilegedArgs } from '../../criu/locate/caps.js';
import { criuErrorLines } from '../../criu/log.js';
import { PRIVATE_FILE_MODE } from '../../util/fsx.js';
import { processTree } from '../../util/procfs.js';
import { signalPid } from '../../util/signals.js';
import { criuLogLevel } from './options.js';

export const LAZY_SOCKET = 'lazy-pages.socket';
export const LAZY_LOG = 'lazy-pages.log';
/** What the daemon writes before its log is open. */
const LAZY_STDERR = 'lazy-pages.stderr';
/** How long the daemon may take to listen (it reads the process tree's image first): tens of ms here. */
export const LAZY_START_TIMEOUT_MS = 10_000;
/** How long a foreground restart, its process gone, waits to learn how the daemon ended (it notices in ms). */
const GUARD_WAIT_MS = 2000;

/**
 * Why this CRIU and kernel cannot restore lazily (CRIU's own feature check: userfaultfd
 * with the non-cooperative events), or undefined when they can.
 */
export async function lazyPagesUnsupported(criuPath: string): Promise<string | undefined> {
  // A yes is kept with the binary's passing `criu check` (same binary, kernel and user).
  if (cachedFeature(criuPath, 'lazyPages')) return undefined;
  try {
    const features = await criuFeatures(criuPath);
    if (features.lazyPages) recordFeature(criuPath, 'lazyPages');
    if (features.lazyPages) return undefined;
    // As a user other than root, the kernel's userfaultfd is usually what is missing (its
    // sysctl lets only privileged processes handle faults of kernel code).
    return process.geteuid?.() === 0
      ? 'CRIU reports that this kernel cannot restore lazily (no userfaultfd with non-cooperative events)'
      : 'CRIU reports that it cannot restore lazily for this user here (a user other than root may need sysctl vm.unprivileged_userfaultfd=1)';
  } catch (err) {
    return `CRIU's feature check failed: ${(err as Error).message}`;
  }
}

export class LazyPagesDaemon {
  private constructor(
    private readonly child: ChildProcess,
    readonly pid: number,
    readonly workDir: string,
  ) {}

  get logPath(): string {
    return join(this.workDir, LAZY_LOG);
  }

  /**
   * Starts the daemon on `imagesDir` in `workDir` and resolves once it listens (its
   * socket appeared: the directory is watched, bounded by `timeoutMs`). On any failure
   * it is killed and its socket removed.
   */
  static async start(criuPath: string, imagesDir: string, workDir: string, timeoutMs = LAZY_START_TIMEOUT_MS): Promise<LazyPagesDaemon> {
    const stderr = openSync(join(workDir, LAZY_STDERR), 'a', PRIVATE_FILE_MODE);
    let child: ChildProcess;
    try {
      const args = [...unprivilegedArgs(), 'lazy-pages', '-D', imagesDir, '--work-dir', workDir, '-o', LAZY_LOG, `-v${criuLogLevel()}`];
      // detached: a session of its own, so that it outlives a detached restart and no
      // signal meant for our terminal or group reaches it.
      child = spawn(criuPath, args, { stdio: ['ignore', 'ignore', stderr], detached: true });
    } finally {
      closeSync(stderr);
    }
    child.on('error', () => {});
    const pid = child.pid ?? 0;
    if (pid <= 1) throw new CriuError(ErrorCodes.CRIU_FAILED, `cannot start CRIU's lazy-pages daemon (${criuPath})`);
    const daemon = new LazyPagesDaemon(child, pid, workDir);
    try {
      await daemon.listening(timeoutMs);
    } catch (err) {
      await daemon.stop();
      throw err;
    }
    // Not waited for by this process: it ends on its own.
    child.unref();
    return daemon;
  }

  /** Whether it still runs (as far as this process knows: it is our child). */
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private listening(timeoutMs: number): Promise<void> {
    const socket = join(this.workDir, LAZY_SOCKET);
    return new Promise<void>((resolve, reject) => {
      let watcher: FSWatcher | undefined;
      const finish = (err?: Error) => {
        clearTimeout(timer);
        watcher?.close();
        this.child.off('exit', onExit);
        if (err) reject(err);
        else resolve();
      };
      // bind() makes the file and listen() follows at once; the restore connects tens of
      // ms later (criu's start-up and its reading of the images come first).
      const check = () => {
        if (lstatSync(socket, { throwIfNoEntry: false })?.isSocket()) finish();
      };
      const onExit = (code: number | null, signal: string | null) => finish(this.failure(`exited (${signal ?? `status ${code}`}) before it listened`));
      const timer = setTimeout(() => finish(this.failure(`did not listen within ${timeoutMs} ms`)), timeoutMs);
      this.child.once('exit', onExit);
      try {
        watcher = watch(this.workDir, (_event, name) => {
          if (name === null || name === LAZY_SOCKET) check();
        });
        watcher.on('error', (err) => finish(err));
      } catch (err) {
        finish(err as Error);
        return;
      }
      // Made before the watch began.
      check();
    });
  }

  private failure(what: string): CriuError {
    const lines = criuErrorLines(this.logPath);
    return new CriuError(ErrorCodes.CRIU_FAILED, `CRIU's lazy-pages daemon ${what}${lines[0] ? `: ${lines[0]}` : ''}`, {
      logPath: this.logPath,
      criuErrors: lines,
      hint: `its log: ${this.logPath}; or restart without --lazy`,
    });
  }

  /**
   * Calls `failed` if it ends by a signal or with a non-zero status (it exits 0 once every
   * page is in, and also once the tree is gone): pages it had not copied then read as
   * zeros in the tree (the kernel drops the userfaultfd's ranges), not as a fault that waits.
   */
  onFailure(failed: (how: string) => void): void {
    this.child.once('exit', (code, signal) => {
      if (signal !== null || code !== 0) failed(signal ?? `status ${code}`);
    });
  }

  /** Resolves once it has exited (at once if it has), or after `timeoutMs`. */
  async ended(timeoutMs: number): Promise<void> {
    if (!this.running) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.child.once('exit', () => resolve())),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  /** The restore has connected: the socket's name is no longer needed (the daemon keeps the connection). */
  unlinkSocket(): void {
    rmSync(join(this.workDir, LAZY_SOCKET), { force: true });
  }

  /** Kills it (a failure before the restored process was released) and waits until it is gone; its socket goes. */
  async stop(timeoutMs = 5000): Promise<void> {
    if (this.running && this.pid > 1) {
      try {
        this.child.kill('SIGKILL');
      } catch {
        // gone meanwhile
      }
      await this.ended(timeoutMs);
    }
    this.unlinkSocket();
  }
}

/**
 * A foreground restore's guard: if `daemon` fails while the tree rooted at `pid` (our
 * child) runs, the tree is SIGKILLed. `reaped()`, called once the root was reaped,
 * returns the error to report if the daemon failed — also when the tree died first
 * (the kernel's zero pages can crash it before our signal lands): the daemon ends by
 * itself once the tree is gone, so how it ended is waited for (bounded).
 */
export function guardTree(daemon: LazyPagesDaemon, pid: number): { reaped(): Promise<CriuError | undefined> } {
  let done = false;
  let failure: string | undefined;
  daemon.onFailure((how) => {
    failure = how;
    if (done) return;
    // The root is our child, not yet reaped: its pid cannot have been reused; the rest
    // of the tree is what descends from it now.
    for (const p of processTree(pid)) {
      try {
        if (p > 1) signalPid(p, 'SIGKILL');
      } catch {
        // not ours to signal: the error still says what happened
      }
    }
  });
  return {
    async reaped() {
      done = true;
      await daemon.ended(GUARD_WAIT_MS);
      if (failure === undefined) return undefined;
      return new CriuError(
        ErrorCodes.CRIU_FAILED,
        `CRIU's lazy-pages daemon ended (${failure}) before every page was in: the process was ended, its missing memory read as zeros`,
        { logPath: daemon.logPath, hint: `its log: ${daemon.logPath}` },
      );
    },
  };
}

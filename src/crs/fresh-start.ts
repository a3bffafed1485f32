// Restart for checkpointers that save no process image (self, none): the recorded
// command starts afresh, told through its environment which snapshot it resumes from.
import { spawn, type StdioOptions } from 'node:child_process';
import { closeSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { isatty } from 'node:tty';
import { CkptError, ErrorCodes, errnoCode } from '../errors.js';
import { openAppendFile } from '../util/safe-walk.js';
import { shielded } from '../util/inherited-fds.js';
import { waitExit } from '../util/spawn.js';
import { restartEnv, withoutSecrets } from '../store/env.js';
import { accountOf, checkAs, enterAndRun } from './run-as.js';
import type { RestartedProcess, RestartRequest } from './types.js';

/** Set in a freshly restarted process: the snapshot directory it resumes from. */
export const RESTART_SNAPSHOT_ENV = 'CKPT_RESTART_SNAPSHOT';

export async function restartFresh(request: RestartRequest): Promise<RestartedProcess> {
  const record = request.snapshot.manifest.process;
  const [command, ...args] = record.argv;
  if (!command) throw new CkptError(ErrorCodes.SNAPSHOT_FORMAT, 'the snapshot records no command line');
  // Another user's program (root, --trust-owner): everything about it as that user (run-as.ts).
  const account = request.runAs ? accountOf(request.runAs.uid, request.snapshot.dir) : undefined;
  // Withheld variables (secrets) come from our environment: never handed to another user, nor refreshed from ours.
  const ours = account ? withoutSecrets(process.env) : process.env;
  const env = {
    ...restartEnv(record.env, account ? [] : record.envWithheld, ours, request.envRefresh),
    [RESTART_SNAPSHOT_ENV]: request.snapshot.dir,
  };
  if (account) checkAs(account, record.cwd, command, env);
  else if (!isDirectory(record.cwd)) {
    throw new CkptError(ErrorCodes.CWD_MISSING, `the working directory the program ran in, ${record.cwd}, does not exist here`, {
      hint: 'create it (or mount what held it) and restart again',
    });
  }
  // A program started afresh runs on its state from the start: it waits for the verification.
  await request.verification?.done;
  let out: number | undefined;
  // Not through a link planted where the log goes.
  if (request.detach) out = openLog(request.logFile ?? '/dev/null');
  request.onProgress?.(`starting ${command} afresh${account ? ` as uid ${account.uid}` : ''}`);
  const [file, argv] = account ? enterAndRun(record.cwd, command, args) : [command, args];
  const start = (stdio: StdioOptions) =>
    spawn(file, argv, {
      cwd: account ? '/' : record.cwd,
      env,
      stdio,
      // Its own session: away from our terminal (and our process group's signals: ckpt restart forwards them).
      detached: request.detach || account !== undefined,
      // libuv drops the supplementary groups, then sets the gid and the uid.
      ...(account ? { uid: account.uid, gid: account.gid } : {}),
    });
  const logged: ('ignore' | number)[] | undefined = out !== undefined ? ['ignore', out, out] : undefined;
  // Another user's program gets none of the descriptors root was started with (/dev/null in their place).
  const child = account ? shielded(logged ?? userStdio(), start) : start(logged ?? 'inherit');
  const relayed = [relay(child.stdout, 1), relay(child.stderr, 2)];
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(spawnError(command, err)));
    });
  } finally {
    if (out !== undefined) closeSync(out);
  }
  if (request.detach) child.unref();
  // Relayed: once its output has come through too (a child it left holding the pipe is not waited for long).
  const exited = waitExit(child).then(async (exit) => {
    const cut = setTimeout(() => relayed.forEach((r) => r.cut()), 1000);
    await Promise.all(relayed.map((r) => r.ended));
    clearTimeout(cut);
    return exit;
  });
  return { pid: child.pid!, wait: () => exited };
}

/**
 * Another user's program gets no descriptor of our terminal (TIOCSTI types through one,
 * and reads from it see what we type): a terminal among our stdout and stderr is
 * relayed through a pipe; anything else (a file, a pipe) is handed over as it is.
 */
function userStdio(): ('ignore' | 'pipe' | number)[] {
  return ['ignore', isatty(1) ? 'pipe' : 1, isatty(2) ? 'pipe' : 2];
}

/** Copies a relayed stream to our descriptor `fd` as it comes: `ended` at its end; `cut` ends it sooner. */
function relay(stream: Readable | null, fd: number): { ended: Promise<void>; cut: () => void } {
  if (!stream) return { ended: Promise.resolve(), cut: () => {} };
  // A terminal: written synchronously (no backlog); gone, the program's output is dropped, the program never blocked.
  const out = fd === 1 ? process.stdout : process.stderr;
  out.on('error', () => {});
  stream.on('data', (chunk: Buffer) => void out.write(chunk));
  const ended = new Promise<void>((resolve) => stream.once('close', () => resolve()));
  return { ended, cut: () => stream.destroy() };
}

/** The log of a detached program, appended to; never through a link planted where it goes. */
function openLog(path: string): number {
  try {
    return openAppendFile(path);
  } catch (err) {
    if (err instanceof CkptError) throw err;
    if (errnoCode(err) === 'ELOOP') throw new CkptError(ErrorCodes.USAGE, `--log ${path} is a symbolic link: refusing to write through it`, { cause: err });
    if (errnoCode(err) === 'EINVAL' || errnoCode(err) === 'ENXIO') throw new CkptError(ErrorCodes.USAGE, `--log ${path} is not a regular file`, { cause: err });
    throw new CkptError(ErrorCodes.PERMISSION, `cannot open the log ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Why the recorded command could not start, with the code that names the cause. */
function spawnError(command: string, err: Error): CkptError {
  const code = errnoCode(err);
  if (code === 'ENOENT') return new CkptError(ErrorCodes.COMMAND_NOT_FOUND, `cannot start ${command}: no such program here`, { cause: err });
  if (code === 'EACCES' || code === 'EPERM') return new CkptError(ErrorCodes.PERMISSION, `cannot start ${command}: permission denied`, { cause: err });
  if (code === 'E2BIG') return new CkptError(ErrorCodes.SNAPSHOT_FORMAT, `cannot start ${command}: its recorded command line and environment are too large`, { cause: err });
  return new CkptError(ErrorCodes.NO_SUCH_PROCESS, `cannot start ${command}: ${err.message}`, { cause: err });
}

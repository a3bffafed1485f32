// Restart for checkpointers that save no process image (self, none): the recorded
// command starts afresh, told through its environment which snapshot it resumes from.
import { spawn } from 'node:child_process';
import { closeSync, openSync, statSync } from 'node:fs';
import { CkptError, ErrorCodes, errnoCode } from '../errors.js';
import { PRIVATE_FILE_MODE } from '../util/fsx.js';
import { waitExit } from '../util/spawn.js';
import { restartEnv } from '../store/env.js';
import type { RestartedProcess, RestartRequest } from './types.js';

/** Set in a freshly restarted process: the snapshot directory it resumes from. */
export const RESTART_SNAPSHOT_ENV = 'CKPT_RESTART_SNAPSHOT';

export async function restartFresh(request: RestartRequest): Promise<RestartedProcess> {
  const record = request.snapshot.manifest.process;
  const [command, ...args] = record.argv;
  if (!command) throw new CkptError(ErrorCodes.SNAPSHOT_FORMAT, 'the snapshot records no command line');
  if (!isDirectory(record.cwd)) {
    throw new CkptError(ErrorCodes.CWD_MISSING, `the working directory the program ran in, ${record.cwd}, does not exist here`, {
      hint: 'create it (or mount what held it) and restart again',
    });
  }
  // A program started afresh runs on its state from the start: it waits for the verification.
  await request.verification?.done;
  const { runAs } = request;
  // Withheld variables (secrets) come from our environment: never handed to another user.
  const env = {
    ...restartEnv(record.env, runAs ? [] : record.envWithheld, process.env, request.envRefresh),
    [RESTART_SNAPSHOT_ENV]: request.snapshot.dir,
  };
  let out: number | undefined;
  if (request.detach) out = openSync(request.logFile ?? '/dev/null', 'a', PRIVATE_FILE_MODE);
  request.onProgress?.(`starting ${command} afresh${runAs ? ` as uid ${runAs.uid}` : ''}`);
  const child = spawn(command, args, {
    cwd: record.cwd,
    env,
    stdio: out === undefined ? 'inherit' : ['ignore', out, out],
    detached: request.detach,
    // libuv drops the supplementary groups, then sets the gid and the uid.
    ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
  });
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(spawnError(command, err)));
    });
  } finally {
    if (out !== undefined) closeSync(out);
  }
  if (request.detach) child.unref();
  const exited = waitExit(child);
  return { pid: child.pid!, wait: () => exited };
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

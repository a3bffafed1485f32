// Restart for checkpointers that save no process image (self, none): the recorded
// command starts afresh, told through its environment which snapshot it resumes from.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { CkptError, ErrorCodes } from '../errors.js';
import { PRIVATE_FILE_MODE } from '../util/fsx.js';
import { waitExit } from '../util/spawn.js';
import type { RestartedProcess, RestartRequest } from './types.js';

/** Set in a freshly restarted process: the snapshot directory it resumes from. */
export const RESTART_SNAPSHOT_ENV = 'CKPT_RESTART_SNAPSHOT';

export async function restartFresh(request: RestartRequest): Promise<RestartedProcess> {
  const record = request.snapshot.manifest.process;
  const [command, ...args] = record.argv;
  if (!command) throw new CkptError(ErrorCodes.SNAPSHOT_FORMAT, 'the snapshot records no command line');
  const env = { ...record.env, [RESTART_SNAPSHOT_ENV]: request.snapshot.dir };
  let out: number | undefined;
  if (request.detach) out = openSync(request.logFile ?? '/dev/null', 'a', PRIVATE_FILE_MODE);
  request.onProgress?.(`starting ${command} afresh`);
  const child = spawn(command, args, {
    cwd: record.cwd,
    env,
    stdio: out === undefined ? 'inherit' : ['ignore', out, out],
    detached: request.detach,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) =>
        reject(new CkptError(ErrorCodes.NO_SUCH_PROCESS, `cannot start ${command}: ${err.message}`, { cause: err })),
      );
    });
  } finally {
    if (out !== undefined) closeSync(out);
  }
  if (request.detach) child.unref();
  const exited = waitExit(child);
  return { pid: child.pid!, wait: () => exited };
}

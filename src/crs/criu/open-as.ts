// Root restoring another user's process: the files it wrote are reopened for
// appending (files.ts), by paths that run through that user's directories, which
// they may have changed since the dump (a directory swapped for a link to
// /etc/cron.d). So the path is resolved, and a missing file created (0600), by a
// shell running as the user; root then reopens that very file through
// /proc/<shell>/fd/3 — nothing the user could not have opened themselves.
import { spawn } from 'node:child_process';
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { CkptError, ErrorCodes } from '../../errors.js';
import { accountGid } from '../run-as.js';
import { shielded } from '../../util/inherited-fds.js';

/** Opens `path` for appending with the rights of `uid` only; a regular file, or a coded error. */
export async function openForAppendAs(path: string, uid: number, what: string): Promise<number> {
  // None of root's inherited descriptors: the user may ptrace this shell.
  const shell = shielded(['pipe', 'pipe', 'pipe'], (stdio) =>
    spawn('/bin/sh', ['-c', 'umask 077; [ -p "$0" ] && { echo "$0: a FIFO" >&2; exit 1; }; exec 3>>"$0" || exit 1; echo open; read -r _', path], {
      cwd: '/',
      env: { PATH: '/usr/bin:/bin' },
      uid,
      gid: accountGid(uid),
      stdio,
    }),
  );
  let stderr = '';
  shell.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => shell.once('close', () => resolve()));
  shell.once('error', () => {});
  try {
    // Its one line once the file is open; none if it could not open it (it exits).
    const open = await new Promise<boolean>((resolve) => {
      const lines = createInterface({ input: shell.stdout! });
      lines.once('line', (l) => resolve(l === 'open'));
      lines.once('close', () => resolve(false));
    });
    if (!open || shell.pid === undefined) {
      await exited;
      const why = stderr.trim().split('\n').at(-1)?.replace(/^.*?: \d+: /, '') || 'it could not be opened';
      throw new CkptError(ErrorCodes.PERMISSION, `cannot open ${path} (${what}) for appending as uid ${uid}: ${why}`, {
        hint: `check ${path} and its directories, or send the output elsewhere with --stdout/--stderr/--log`,
        details: { path },
      });
    }
    const fd = openSync(`/proc/${shell.pid}/fd/3`, constants.O_WRONLY | constants.O_APPEND | constants.O_NONBLOCK);
    // The user's own regular file, nothing else: the user can ptrace the shell and have it
    // open another file (O_PATH needs no right to it) that root's reopen would then write.
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== uid) {
      closeSync(fd);
      throw new CkptError(ErrorCodes.PERMISSION, `${path} (${what}) is not a regular file of uid ${uid}: not appending to it`, { details: { path } });
    }
    return fd;
  } finally {
    shell.stdin!.end();
    await exited;
  }
}

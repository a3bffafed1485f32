// Finding a command's executable the way the exec that runs it will: a name with a
// slash is a path (relative to the command's working directory), any other name is
// looked up in PATH. Checked before anything starts, so a typo fails the launch at once.
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { CkptError, ErrorCodes } from '../errors.js';

/** A regular file the caller may execute. */
export function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The absolute path `command` runs from in `cwd` (default: ours) with this PATH; COMMAND_NOT_FOUND if none. */
export function resolveCommand(command: string, path: string, cwd: string = process.cwd()): string {
  if (command === '') throw new CkptError(ErrorCodes.USAGE, 'no command given');
  if (command.includes('/')) {
    const full = isAbsolute(command) ? command : resolvePath(cwd, command);
    if (isExecutableFile(full)) return full;
    throw new CkptError(ErrorCodes.COMMAND_NOT_FOUND, `command not found or not executable: ${command}`);
  }
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    // A relative entry against the command's cwd, not ours: the child's execvp runs after its chdir, so this finds the very file that will run.
    const full = join(resolvePath(cwd, dir), command);
    if (isExecutableFile(full)) return full;
  }
  throw new CkptError(ErrorCodes.COMMAND_NOT_FOUND, `command not found: ${command}`, { hint: 'not in PATH' });
}

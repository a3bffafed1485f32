// `ckpt resume PID`: let a tree left stopped by `ckpt checkpoint --stop` run again.
import { parse, intOption, type Command } from '../command.js';
import { resumeSpec } from '../spec/others.js';
import { CkptError, ErrorCodes, UsageError } from '../../errors.js';
import { resumeProcess } from '../../process/external.js';
import { println } from '../output.js';
import { printResult } from '../json.js';
import { findIsolatedJob } from '../../isolate/job.js';

/** pid 1 of a running isolated job; a name that is no job is a usage error (not a pid either). */
function jobRoot(query: string): number {
  try {
    return findIsolatedJob(query).isolated.rootPid;
  } catch (err) {
    if (err instanceof CkptError && err.code === ErrorCodes.JOB_NOT_FOUND) {
      throw new UsageError(`'${query}' is neither a pid nor a running isolated job`);
    }
    throw err;
  }
}

export const resumeCommand: Command = {
  async run(argv) {
    const { values, positionals } = parse(argv, resumeSpec);
    if (positionals.length !== 1) throw new UsageError(positionals.length ? `name one pid or job, not ${positionals.length}` : 'name the pid or the job to resume');
    // A job name or id (an isolated job left stopped) resumes its whole tree.
    const pid = /^\d+$|^-/.test(positionals[0]!) ? intOption(positionals[0], 'pid', 0)! : jobRoot(positionals[0]!);
    const tree = resumeProcess(pid);
    if (values.json) printResult('resume', { pid, pids: tree });
    else println(`resumed ${tree.length} process(es) of tree ${pid}`);
    return 0;
  },
};

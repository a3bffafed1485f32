// `ckpt resume PID|JOB`: let a process tree or a job left stopped by `ckpt checkpoint --stop` run again.
import { parse, intOption, type Command } from '../command.js';
import { resumeSpec } from '../spec/others.js';
import { CkptError, ErrorCodes, UsageError } from '../../errors.js';
import { resumeProcess } from '../../process/resume.js';
import { resumeJob } from '../../control/resume.js';
import { println } from '../output.js';
import { printResult } from '../json.js';

/** A job by id, id prefix or name; a word that is no job is a usage error (not a pid either). */
async function resumeNamedJob(query: string, json: boolean): Promise<number> {
  let r;
  try {
    r = await resumeJob(query);
  } catch (err) {
    if (err instanceof CkptError && err.code === ErrorCodes.JOB_NOT_FOUND) {
      throw new UsageError(`'${query}' is neither a pid nor a running job`);
    }
    throw err;
  }
  const { job } = r;
  if (json) printResult('resume', { pid: job.kind === 'isolated' && job.isolated ? job.isolated.rootPid : job.pid, pids: r.processes ?? job.ranks.flatMap((x) => (x.pid === null || x.node ? [] : [x.pid])), job: job.id, name: job.name, ...(r.via ? { via: r.via } : {}) });
  else if (r.processes) println(`resumed ${r.processes.length} stopped process(es) of isolated job ${job.name}`);
  else println(`resumed the ${job.size} rank(s) of job ${job.name}`);
  return 0;
}

export const resumeCommand: Command = {
  async run(argv) {
    const { values, positionals } = parse(argv, resumeSpec);
    if (positionals.length !== 1) throw new UsageError(positionals.length ? `name one pid or job, not ${positionals.length}` : 'name the pid or the job to resume');
    const json = values.json === true;
    if (!/^\d+$|^-/.test(positionals[0]!)) return resumeNamedJob(positionals[0]!, json);
    const pid = intOption(positionals[0], 'pid', 0)!;
    const tree = resumeProcess(pid);
    if (json) printResult('resume', { pid, pids: tree });
    else println(tree.length ? `resumed ${tree.length} stopped process(es) of tree ${pid}` : `no process of tree ${pid} was stopped`);
    return 0;
  },
};

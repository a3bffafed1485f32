// `ckpt resume PID|JOB`: let a process tree or a job left stopped by `ckpt checkpoint --stop` run again.
import { parse, intOption, type Command } from '../command.js';
import { CkptError, ErrorCodes, UsageError } from '../../errors.js';
import { resumeProcess } from '../../process/resume.js';
import { resumeJob } from '../../control/resume.js';
import { printJson, println } from '../output.js';

const usage = 'ckpt resume PID|JOB [--json]';

/** A job by id, id prefix or name; a word that is no job is a usage error (not a pid either). */
async function resumeNamedJob(query: string, json: boolean): Promise<number> {
  let r;
  try {
    r = await resumeJob(query);
  } catch (err) {
    if (err instanceof CkptError && err.code === ErrorCodes.JOB_NOT_FOUND) {
      throw new UsageError(`'${query}' is neither a pid nor a running job`, { hint: `usage: ${usage}` });
    }
    throw err;
  }
  const { job } = r;
  if (json) printJson({ ok: true, job: job.id, name: job.name, ...(r.processes ? { resumed: r.processes } : { ranks: job.size, via: r.via }) });
  else if (r.processes) println(`resumed ${r.processes.length} stopped process(es) of isolated job ${job.name}`);
  else println(`resumed the ${job.size} rank(s) of job ${job.name}`);
  return 0;
}

export const resumeCommand: Command = {
  name: 'resume',
  summary: 'continue a process tree or a job left stopped by a checkpoint (every process of it, not only its root)',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, { json: { type: 'boolean', default: false } }, usage);
    if (positionals.length !== 1) throw new UsageError('name one pid or job', { hint: `usage: ${usage}` });
    const json = values.json === true;
    if (!/^\d+$|^-/.test(positionals[0]!)) return resumeNamedJob(positionals[0]!, json);
    const pid = intOption(positionals[0], 'pid', 0)!;
    const tree = resumeProcess(pid);
    if (json) printJson({ ok: true, pid, resumed: tree });
    else println(tree.length ? `resumed ${tree.length} stopped process(es) of tree ${pid}` : `no process of tree ${pid} was stopped`);
    return 0;
  },
};

// ckpt kill: end a running job, or send its ranks a signal.
import type { Command } from '../command.js';
import { parse } from '../command.js';
import { UsageError } from '../../errors.js';
import { println } from '../output.js';
import { printResult } from '../json.js';
import { killJob, parseSignal } from '../../control/job-control.js';

const usage = 'ckpt kill JOB [--signal SIG] [--json]';

export const kill: Command = {
  name: 'kill',
  summary: 'End a running job (or send its ranks a signal)',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, { signal: { type: 'string', short: 's' }, json: { type: 'boolean' } }, usage);
    if (positionals.length !== 1) throw new UsageError('name one job (id, id prefix or name)', { hint: `usage: ${usage}` });
    const signal = values.signal === undefined ? undefined : parseSignal(values.signal);
    const { job, via } = await killJob(positionals[0]!, signal);
    if (values.json) printResult('kill', { job: job.id, name: job.name, signal: signal ?? null, via });
    else if (job.kind === 'isolated') println(signal ? `sent ${signal} to the command of job ${job.id}` : `ending isolated job ${job.id}`);
    else println(signal ? `sent ${signal} to the ${job.size} ranks of job ${job.id}` : `ending job ${job.id} (${job.size} ranks)`);
    return 0;
  },
};

// ckpt kill: end a running job, or send its ranks a signal.
import type { Command } from '../command.js';
import { parse } from '../command.js';
import { killSpec } from '../spec/others.js';
import { UsageError } from '../../errors.js';
import { println } from '../output.js';
import { printResult } from '../json.js';
import { killJob, parseSignal } from '../../control/job-control.js';

export const kill: Command = {
  async run(argv) {
    const { values, positionals } = parse(argv, killSpec);
    if (positionals.length !== 1) throw new UsageError(positionals.length ? `name one job, not ${positionals.length}` : 'name the job (its id, id prefix or name: ckpt ps)');
    const signal = values.signal === undefined ? undefined : parseSignal(values.signal);
    const { job, via } = await killJob(positionals[0]!, signal);
    if (values.json) printResult('kill', { job: job.id, name: job.name, signal: signal ?? null, via });
    else if (job.kind === 'isolated') println(signal ? `sent ${signal} to the command of job ${job.id}` : `ending isolated job ${job.id}`);
    else println(signal ? `sent ${signal} to the ${job.size} ranks of job ${job.id}` : `ending job ${job.id} (${job.size} ranks)`);
    return 0;
  },
};

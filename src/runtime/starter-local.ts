// LocalStarter: today's way of starting ranks — each one a child of this process,
// leading a process group (and session) of its own, so that a signal to the group
// reaches everything the rank started.
import { spawnGroup } from '../util/spawn.js';
import { spawnedRank } from './rankproc.js';
import type { RankProcess, RankSpec, RankStarter } from './starter.js';

export class LocalStarter implements RankStarter {
  start(spec: RankSpec): RankProcess {
    const child = spawnGroup(spec.command, spec.args, { cwd: spec.cwd, env: spec.env, stdio: ['ignore', spec.stdout, spec.stderr] });
    return spawnedRank(child);
  }
}

// The node agent's entry point: srun runs `node dist/agent/main.js` on every node
// of a job across nodes (runtime/starter-slurm.ts). One line on failure, never a trace.
import { CkptError } from '../errors.js';
import { holdInspectorSignal } from '../util/signals.js';
import { agentEnv, runNodeAgent } from './node-agent.js';

// First: a SIGUSR1 (Slurm's, ahead of a time limit) while it connects must not open
// Node's debugger, a port any local user could reach to run code as the agent's user.
holdInspectorSignal();

// No top-level await: the bundle of this entry is CommonJS (scripts/bundle.mjs).
void (async () => {
  try {
    process.exitCode = await runNodeAgent(agentEnv(process.env));
  } catch (err) {
    const e = err as Error;
    process.stderr.write(`ckpt agent: ${e.message}${err instanceof CkptError ? ` [${err.code}]` : ''}\n`);
    process.exitCode = 1;
  }
})();

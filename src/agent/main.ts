// The node agent's entry point: srun runs `node dist/agent/main.js` on every node
// of a job across nodes (runtime/starter-slurm.ts). One line on failure, never a trace.
// First of all (imports run in order): SIGUSR1 held (hold-signal.ts).
import './hold-signal.js';
import { CkptError } from '../errors.js';
import { guardInspector } from '../util/inspector.js';
import { agentEnv, runNodeAgent } from './node-agent.js';

// A debugger port Node opened on a SIGUSR1 before hold-signal.ts ran is closed.
void guardInspector((line) => process.stderr.write(`ckpt agent: ${line}\n`));

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

// Imported first by the agent's entry point (main.ts), so that it runs before the
// rest of the agent's modules are even loaded: from here on a SIGUSR1 (Slurm's,
// ahead of a time limit) cannot open Node's debugger, a port any local user could
// reach to run code as the agent's user. (Before any of ckpt's code runs, Node itself
// opens it on one: a window of Node's start-up that no script can close.)
import { holdInspectorSignal } from '../util/signals.js';

holdInspectorSignal();

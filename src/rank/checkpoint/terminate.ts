// A checkpoint that ends the job (`ckpt checkpoint JOB --term`, a preemption): the
// rank does not go back to the program from its safe point. What it wrote before
// the snapshot reaches its pipes first; then it exits with EXIT_CHECKPOINTED.
// Nothing of the program runs: neither its onContinue hooks nor its 'exit' listeners.
import { EXIT_CHECKPOINTED } from '../../util/exit-status.js';

/** Ends this process at the snapshot; never returns. */
export function exitAtSnapshot(): Promise<never> {
  // Writes to pipes and files are synchronous on Linux: usually nothing is left.
  const pending = [process.stdout, process.stderr].filter((s) => s.writableLength > 0 && !s.destroyed);
  const exit = (): never => {
    process.removeAllListeners('exit');
    process.exit(EXIT_CHECKPOINTED);
  };
  if (pending.length === 0) return exit();
  return Promise.all(pending.map((s) => new Promise<void>((resolve) => s.write('', () => resolve())))).then(exit);
}

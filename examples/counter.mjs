// A program that checkpoints itself: it counts, takes a checkpoint at 5, and
// reports which world it is in afterwards — `continue` in the original process,
// `restart` in the one brought back from the snapshot. With CRIU the whole process
// is saved; without it, the `self` checkpointer saves what save() returns.
//
//   node examples/counter.mjs STORE     (then kill it, and: bin/ckpt restart STORE)
import { checkpoint, onRestart, registerSelf } from 'ckpt';

const store = process.argv[2] ?? './counter-snapshots';
let counter = 0;
let resumed = false;
registerSelf({ save: () => ({ counter }), load: (s) => void (counter = s.counter) });
onRestart((info) => console.log(`  (restart hook: pid ${info.previousPid} → ${info.pid} on ${info.hostname})`));

for (;;) {
  if ((counter === 5 && !resumed) || process.env.CKPT_RESTART_SNAPSHOT) {
    const result = await checkpoint({ dir: store });
    resumed = result.state === 'restart';
    console.log(`checkpoint() returned '${result.state}' (${result.crs}, snapshot ${result.snapshot.seq}) at counter ${counter}`);
    if (result.state === 'continue') {
      console.log('waiting to be killed…');
      await new Promise(() => setInterval(() => {}, 1000));
    }
  }
  counter++;
  console.log(`count ${counter}`);
  await new Promise((r) => setTimeout(r, 100));
  if (counter >= 10) break;
}
console.log('done');

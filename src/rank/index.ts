// ckpt/rank: what a rank program imports.
//   import { init, ANY_SOURCE } from 'ckpt/rank';
//   const comm = await init();
//   await comm.send((comm.rank + 1) % comm.size, { hello: comm.rank });
//   const msg = await comm.recv();
//   await comm.finalize();
export { init, Comm, ANY_SOURCE, ANY_TAG, MAX_TAG } from './comm.js';
export type { Data, JsonValue, Message, WaitOptions, ReduceOp, InitOptions } from './comm.js';

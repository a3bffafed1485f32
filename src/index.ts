// ckpt's public API.

export * from './errors.js';
export { version } from './version.js';
export { checkpoint, type CheckpointOptions } from './process/checkpoint.js';
export { onPrepare, onContinue, onRestart, type CheckpointResult, type CheckpointState, type PrepareInfo } from './crs/hooks.js';
export { checkpointProcess, resumeProcess, type ProcessCheckpointOptions, type ProcessCheckpointResult } from './process/external.js';
export type { WriteProgress } from './store/image-watcher.js';
export { restartSnapshot, type RestartOptions, type Restarted } from './process/restart.js';
export { removeSnapshotAndLeftovers, type RemovedSnapshot } from './process/remove.js';
export {
  registerSelf,
  selfRegistered,
  registerCheckpointer,
  getCheckpointer,
  checkpointers,
  selectCheckpointer,
  type SelfCallbacks,
  type Checkpointer,
  type Availability,
  type NotifyHook,
} from './crs/index.js';
export { openSnapshot, listSnapshots, verifySnapshot, removeSnapshot, type Snapshot, type ListedSnapshot, type VerifyResult } from './store/store.js';
export type { Manifest, EndState, ProcessRecord } from './store/manifest.js';
export { findCriu } from './criu/locate/find.js';
export { probeCriu } from './criu/locate/probe.js';

// The job runtime's library API (what `ckpt run/ps/kill` are thin shells over).
export { launchJob, Job, MAX_RANKS, resolveCommand } from './launcher.js';
export type { LaunchOptions, OutputMode, JobResult, RankExit, JobEvents } from './launcher.js';
export { LocalStarter } from './starter-local.js';
export type { RankStarter, RankSpec, RankProcess, RankOutput } from './starter.js';
export { listJobs, findJob, jobsDir, type JobRecord, type JobState } from '../registry/jobs.js';
export { Coordinator, type Counters } from './coordinator.js';
export { Channel, formatAddress, parseAddress, OOB_PROTOCOL_VERSION, type Address, type Transport } from '../wire/channel.js';
export * as frame from '../wire/frame.js';

// Each command's implementation, loaded only when that command runs (help, completion
// and --version need none of them; a bundler makes each a chunk of its own).
import type { Command } from '../command.js';

export const loaders: Readonly<Record<string, () => Promise<Command>>> = {
  checkpoint: async () => (await import('./checkpoint.js')).checkpointCommand,
  restart: async () => (await import('./restart.js')).restartCommand,
  resume: async () => (await import('./resume.js')).resumeCommand,
  snapshots: async () => (await import('./snapshots.js')).snapshotsCommand,
  run: async () => (await import('./run.js')).run,
  ps: async () => (await import('./ps.js')).ps,
  kill: async () => (await import('./kill.js')).kill,
  doctor: async () => (await import('./doctor.js')).doctorCommand,
  setup: async () => (await import('./setup.js')).setup,
};

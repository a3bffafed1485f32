// The command table. Each command is one small file beside this one.
import type { Command } from '../command.js';
import { checkpointCommand } from './checkpoint.js';
import { doctorCommand } from './doctor.js';
import { kill } from './kill.js';
import { ps } from './ps.js';
import { restartCommand } from './restart.js';
import { run } from './run.js';
import { resumeCommand } from './resume.js';
import { setup } from './setup.js';
import { snapshotsCommand } from './snapshots.js';

export const commands: Command[] = [checkpointCommand, restartCommand, resumeCommand, snapshotsCommand, doctorCommand, setup, run, ps, kill];

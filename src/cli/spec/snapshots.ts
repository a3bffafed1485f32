// ckpt snapshots ls|inspect|verify|rm|gc: looking after a snapshot store.
import { jsonOption } from './shared.js';
import type { CommandSpec, OptionTable } from './types.js';

const seq = { seq: { arg: 'N', int: { min: 1 }, default: 'the newest', help: 'snapshot N of the store' } } as const;
const ref = [{ name: 'REF', complete: 'dir' }] as const;
const store = [{ name: 'STORE', complete: 'dir' }] as const;

export const lsSpec: CommandSpec<typeof jsonOption> = {
  name: 'ls',
  parent: 'snapshots',
  summary: 'list the committed snapshots of a store',
  usage: ['STORE [--json]'],
  options: jsonOption,
  operands: store,
};

const inspectOptions = { ...seq, 'show-env': { help: 'show the recorded environment variables (hidden by default)' }, ...jsonOption } as const;
export const inspectSpec: CommandSpec<typeof inspectOptions> = {
  name: 'inspect',
  parent: 'snapshots',
  summary: 'show what a snapshot holds, who made it and when',
  usage: ['REF [--seq N] [--show-env] [--json]'],
  description: ['REF is a store (its newest snapshot, or --seq N) or one snapshot directory.'],
  options: inspectOptions,
  operands: ref,
};

const seqJson = { ...seq, ...jsonOption } as const;
export const verifySpec: CommandSpec<typeof seqJson> = {
  name: 'verify',
  parent: 'snapshots',
  summary: "check a snapshot's files against their recorded sizes and checksums",
  usage: ['REF [--seq N] [--json]'],
  options: seqJson,
  operands: ref,
};

const rmOptions = { ...seqJson, force: { help: 'remove it even if its manifest cannot be read (a damaged snapshot): its numbered directory, if it is yours' } } as const;

export const rmSpec: CommandSpec<typeof rmOptions> = {
  name: 'rm',
  parent: 'snapshots',
  summary: 'remove one snapshot (its directory, or the store with --seq N)',
  usage: ['REF [--seq N] [--force] [--json]'],
  options: rmOptions,
  operands: ref,
};

const gcOptions = {
  dir: { short: 'd', arg: 'STORE', complete: 'dir', help: 'the store (instead of naming it as the argument)' },
  'dry-run': { help: 'only say what would be removed' },
  ...jsonOption,
} as const;
export const gcSpec: CommandSpec<typeof gcOptions> = {
  name: 'gc',
  parent: 'snapshots',
  summary: 'remove the partial snapshots that dead ckpt processes left in a store',
  usage: ['STORE [--dry-run] [--json]', '--dir STORE [--dry-run] [--json]'],
  options: gcOptions,
  operands: store,
};

export const snapshotsSpec: CommandSpec<OptionTable> = {
  name: 'snapshots',
  summary: 'list, inspect, verify or remove snapshots',
  usage: ['ls|inspect|verify|rm|gc …'],
  options: {},
  subcommands: [lsSpec, inspectSpec, verifySpec, rmSpec, gcSpec],
};

#!/usr/bin/env node
// ckpt-self --dir STORE [--signal SIG] -- PROGRAM ARGS…
// ckpt run -n N --crs self -- ckpt-self -- PROGRAM ARGS…      (each rank)
// Runs a program that is not written in Node under ckpt's `self` checkpointer: it
// saves and loads its own state through a line protocol on descriptor 3
// (CKPT_SELF_FD). See docs/SELF-PROTOCOL.md; restart with `ckpt restart STORE`.
import { parseArgs } from 'node:util';
import { CkptError } from '../dist/bundle/errors.js';
import { runSelfProgram } from '../dist/bundle/process/self-program.js';

const usage = 'usage: ckpt-self --dir STORE [--signal SIGUSR2] -- PROGRAM [ARGS…]';
function fail(message, code) {
  process.stderr.write(`ckpt: ${message} [${code}]\n`);
  process.exit(2);
}
let parsed;
try {
  parsed = parseArgs({ args: process.argv.slice(2), options: { dir: { type: 'string' }, signal: { type: 'string' }, help: { type: 'boolean' } }, allowPositionals: true, strict: true });
} catch (err) {
  fail(`${err.message} (${usage})`, 'ECKPT_USAGE');
}
const { values, positionals } = parsed;
if (values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
// A job's rank (under `ckpt run --crs self`) checkpoints into the job's store.
if (!values.dir && process.env.CKPT_JOB_ID === undefined) fail(`--dir STORE is required (${usage})`, 'ECKPT_USAGE');
if (positionals.length === 0) fail(`no program given (${usage})`, 'ECKPT_USAGE');
const signal = values.signal === undefined ? undefined : values.signal.toUpperCase().replace(/^(?!SIG)/, 'SIG');
if (signal !== undefined && !/^SIG(USR1|USR2|HUP|ALRM|RTMIN(\+\d+)?)$/.test(signal)) fail(`--signal ${values.signal}: use SIGUSR2, SIGHUP or SIGALRM`, 'ECKPT_USAGE');
try {
  process.exitCode = await runSelfProgram({ dir: values.dir, argv: positionals, triggerSignal: signal });
} catch (err) {
  if (err instanceof CkptError) fail(`${err.message.replace(/\s*\n\s*/g, ' ')}${err.hint ? ` (${err.hint})` : ''}`, err.code);
  fail(`internal error: ${String(err?.message ?? err).split('\n')[0]}`, 'ECKPT_INTERNAL');
}

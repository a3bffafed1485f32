// Ctrl-C (SIGINT) to `ckpt checkpoint JOB` while the job's coordinator stands inside
// the checkpoint (a gate at its prepare phase): the CLI asks the coordinator to abort it
// and leaves at once — exit 130, one line; the coordinator aborts before the commit
// (the ranks resume, the partial snapshot goes), the job runs on and a next
// checkpoint succeeds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ckpt, ckptBin, ckptProgram, eventually, faultEnv, gate, root, tempDir } from '../helpers.js';

const ticker = join(root, 'test', 'fixtures', 'jobs', 'ticker.mjs');

const entries = (dir: string): string[] => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};

test('SIGINT to `ckpt checkpoint JOB` mid-checkpoint: aborted by the coordinator, the job runs on, exit 130', async (t) => {
  const dir = tempDir(t);
  const store = join(dir, 'store');
  // The commit: a phase of every checkpointer (`ckpt checkpoint` takes criu where it can, in one round to the ranks).
  const fault = faultEnv(t, 'commit:coord:gate@1');
  const env = { CKPT_STATE_DIR: join(dir, 'state') };
  const name = `intr${process.pid}`;
  const run = ckptProgram(['run', '-n', '2', '--name', name, '--dir', store, '--', process.execPath, ticker], { ...env, ...fault });
  t.after(() => run.kill('SIGTERM'));
  for (let r = 0; r < 2; r++) await run.waitFor(new RegExp(`^\\[${r}\\] ready ${r} \\d+$`));

  const commit = gate(fault.CKPT_FAULT_DIR, 'commit', 'coord');
  const cli = spawn(process.execPath, [ckptBin, 'checkpoint', name], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  cli.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  cli.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = new Promise<number | null>((resolve) => cli.on('close', (c) => resolve(c)));
  await commit.reached();
  assert.equal(entries(store).filter((n) => n.startsWith('.partial-')).length, 1, 'a checkpoint is being written');
  cli.kill('SIGINT');
  // The CLI does not wait for the abort: it is gone while the coordinator still stands at the gate.
  assert.equal(await code, 130, stderr);
  assert.equal(stderr, `ckpt: interrupted; checkpoint of job ${name} aborted, the job runs on\n`);
  assert.equal(stdout, '');
  commit.open();

  assert.ok(await eventually(() => entries(store).length === 0, 60_000), `nothing left in the store: ${entries(store).join(' ')}`);
  assert.equal(run.child.exitCode, null, 'the job was not ended');
  // Its ranks resumed: they reach their safe points for the next checkpoint.
  const again = await ckpt(['checkpoint', name, '--json'], env);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(JSON.parse(again.stdout).seq, 1);
});

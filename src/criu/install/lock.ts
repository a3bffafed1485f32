// The install lock: one `ckpt setup criu` at a time per install root. A holder
// that died leaves a stale lock, which the next one removes.
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../../errors.js';
import { isAlive } from '../../util/signals.js';
import { installError } from './errors.js';

/** Takes `<root>/.install.lock` (pid inside), waiting while a live holder has it; returns the release function. */
export async function acquireInstallLock(root: string): Promise<() => void> {
  const lock = join(root, '.install.lock');
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(lock, 'utf8').trim() === String(process.pid)) unlinkSync(lock);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw installError(`cannot create ${lock}: ${errnoCode(err) ?? String(err)}`, { cause: err });
    }
    let text: string;
    try {
      text = readFileSync(lock, 'utf8').trim();
    } catch {
      continue; // removed meanwhile
    }
    const holder = Number(text);
    if (!/^\d+$/.test(text) || holder <= 1 || !isAlive(holder)) {
      // Stale (its holder died). A lock file being written holds no pid yet: give it a moment first.
      await new Promise((r) => setTimeout(r, 200));
      try {
        if (readFileSync(lock, 'utf8').trim() === text) unlinkSync(lock);
      } catch {
        // someone else removed it
      }
      continue;
    }
    if (Date.now() > deadline) throw installError(`another \`ckpt setup criu\` (pid ${holder}) holds ${lock}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

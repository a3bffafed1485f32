// Node's inspector opened by a SIGUSR1: a debugger port on loopback through which
// anyone who knows its URL runs code as this process's user. Slurm sends SIGUSR1
// ahead of a time limit. From ckpt's first module on a listener stops it
// (holdInspectorSignal); before that, during Node's own start-up, Node 20 opens it and
// no script can prevent it (`--disable-sigusr1` came with Node 22.14). What is left
// to do: keep the URL off the port's HTTP discovery in the Node processes ckpt starts,
// so a local user cannot learn it there, and close an inspector nobody asked for.
import { holdInspectorSignal } from './signals.js';

/** Node's option that prints the inspector's URL on stderr only, never on its `/json` HTTP listing. */
export const UNPUBLISHED_INSPECTOR = '--inspect-publish-uid=stderr';

/** NODE_OPTIONS with the URL kept off the HTTP listing, unless the user chose where it goes. */
export function withUnpublishedInspector(nodeOptions: string | undefined): string {
  const given = (nodeOptions ?? '').trim();
  if (/(^|\s)--inspect-publish-uid(=|\s|$)/.test(given)) return given;
  return given === '' ? UNPUBLISHED_INSPECTOR : `${given} ${UNPUBLISHED_INSPECTOR}`;
}

/** True when the process was started to be debugged (`--inspect`, `--inspect-brk`, `--inspect-wait`). */
export function inspectorRequested(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  const asked = /^--inspect(-brk|-wait)?(=|$)/;
  return execArgv.some((a) => asked.test(a)) || (nodeOptions ?? '').split(/\s+/).some((a) => asked.test(a));
}

/**
 * Closes Node's inspector when it is open and nobody asked for it (a SIGUSR1 came
 * during start-up); true if it did. `node:inspector` is loaded here, not at start-up:
 * it costs milliseconds every call of the CLI would pay.
 */
export async function closeStrayInspector(execArgv = process.execArgv, nodeOptions = process.env.NODE_OPTIONS): Promise<boolean> {
  if (inspectorRequested(execArgv, nodeOptions)) return false;
  const inspector = await import('node:inspector');
  if (inspector.url() === undefined) return false;
  inspector.close();
  return true;
}

/**
 * Holds SIGUSR1 from now on, and closes an inspector a start-up SIGUSR1 opened; the
 * promise settles when that is done (never rejects), `said` names who closed it.
 */
export function guardInspector(said: (line: string) => void): Promise<void> {
  holdInspectorSignal();
  return closeStrayInspector().then(
    (closed) => {
      if (closed) said('Node had opened its debugger port on a SIGUSR1 during its start-up: closed');
    },
    () => {},
  );
}

// What a snapshot records of an environment. A restart that starts a program afresh
// (self, none, a self job's ranks) needs its variables, but a snapshot is a file that
// is copied, inspected and kept: variables that look like secrets are recorded by name
// only, and a restart takes their values from the environment it runs in.

/** Names whose values are not written into a snapshot. */
const SECRET_NAME = /SECRET|TOKEN|PASSW|PASSPHRASE|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_?KEY|AUTH|COOKIE|SESSION_?KEY|KRB5CCNAME/i;

export interface RecordedEnv {
  env: Record<string, string>;
  /** Variables that were set but whose values were withheld (their names only). */
  envWithheld: string[];
}

export const isSecretName = (name: string): boolean => SECRET_NAME.test(name);

/** Splits an environment into what is recorded and what is withheld; `drop` names variables that describe one run only. */
export function recordEnv(env: NodeJS.ProcessEnv, drop: (name: string) => boolean = () => false): RecordedEnv {
  const out: Record<string, string> = {};
  const envWithheld: string[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || drop(k)) continue;
    if (isSecretName(k)) envWithheld.push(k);
    else out[k] = v;
  }
  return { env: out, envWithheld: envWithheld.sort() };
}

/**
 * The environment a restart starts with: the recorded one, plus the withheld
 * variables' values from `current` where it has them (never when the restart runs as
 * another user than the one whose environment `current` is).
 */
export function restartEnv(recorded: Record<string, string>, withheld: string[] | undefined, current: NodeJS.ProcessEnv): Record<string, string> {
  const env = { ...recorded };
  for (const k of withheld ?? []) {
    const v = current[k];
    if (v !== undefined) env[k] = v;
  }
  return env;
}

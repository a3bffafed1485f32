// What a snapshot records of an environment. A restart that starts a program afresh
// (self, none, a self job's ranks) needs its variables, but a snapshot is a file that
// is copied, inspected and kept: variables that look like secrets are recorded by name
// only, and a restart takes their values from the environment it runs in.

/** Names whose values are not written into a snapshot. */
const SECRET_NAME = /SECRET|TOKEN|PASSW|PASSPHRASE|_PASS$|CRED|JWT|_PAT$|PRIVATE|API_?KEY|ACCESS_?KEY|AUTH|COOKIE|SESSION_?KEY|KRB5CCNAME/i;

export interface RecordedEnv {
  env: Record<string, string>;
  /** Variables that were set but whose values were withheld (their names only). */
  envWithheld: string[];
}

export const isSecretName = (name: string): boolean => SECRET_NAME.test(name);

/** An environment less the variables that look like secrets (what another user's program may see of ours). */
export function withoutSecrets(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !isSecretName(k)));
}

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
 * Variables that describe where a program runs now, not what it is: after a requeue
 * or on another node the recorded values are stale (a new job id, another scratch
 * directory, other GPUs). A restart takes them from its own environment.
 */
const WHERE_IT_RUNS = /^(SLURM_\w*|SLURMD_\w*|TMPDIR|CUDA_VISIBLE_DEVICES|ROCR_VISIBLE_DEVICES|HOSTNAME|PMIX_\w*|PMI_\w*|CKPT_FAULT|CKPT_FAULT_DIR|CKPT_PEER_HOST)$/;

/** Whether a restart takes `name` from its own environment: where it runs, or named by --env-refresh. */
export function isRefreshed(name: string, extra: readonly string[] = []): boolean {
  return WHERE_IT_RUNS.test(name) || extra.includes(name);
}

/**
 * The environment a restart starts with: the recorded one, less the variables that
 * describe where it runs (`isRefreshed`: taken from `current`, or left unset if
 * `current` has none), plus the withheld variables' values from `current` where it
 * has them (the caller passes none when the restart runs as another user).
 */
export function restartEnv(
  recorded: Record<string, string>,
  withheld: string[] | undefined,
  current: NodeJS.ProcessEnv,
  refresh: readonly string[] = [],
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(recorded)) if (!isRefreshed(k, refresh)) env[k] = v;
  for (const [k, v] of Object.entries(current)) if (v !== undefined && isRefreshed(k, refresh)) env[k] = v;
  for (const k of withheld ?? []) {
    const v = current[k];
    if (v !== undefined) env[k] = v;
  }
  return env;
}

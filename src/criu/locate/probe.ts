// A non-throwing report of CRIU for `ckpt doctor`: every candidate findCriu would
// look at, which one qualifies, and the caller's privileges.
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { CkptError } from '../../errors.js';
import { candidates, notFound, type FindCriuOptions } from './find.js';
import { judge, type Candidate, type CriuSource, type Verdict } from './qualify.js';

export interface Privileges {
  root: boolean;
  /** CAP_SYS_ADMIN in the effective set (bit 21 of CapEff in /proc/self/status). */
  capSysAdmin: boolean;
  capEff?: string;
}

const CAP_SYS_ADMIN = 21n;

export function privileges(): Privileges {
  const root = process.geteuid?.() === 0;
  try {
    const m = /^CapEff:\s*([0-9a-fA-F]+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (!m?.[1]) return { root, capSysAdmin: root };
    return { root, capSysAdmin: ((BigInt(`0x${m[1]}`) >> CAP_SYS_ADMIN) & 1n) === 1n, capEff: m[1] };
  } catch {
    return { root, capSysAdmin: false };
  }
}

export interface CriuProbeCandidate {
  path: string;
  source: CriuSource;
  version?: string;
  check: 'passed' | 'failed' | 'not-run';
  reason?: string;
}

export interface CriuProbe {
  /** A qualifying CRIU was found. */
  ok: boolean;
  found: boolean;
  path?: string;
  source?: CriuSource;
  version?: string;
  check: 'passed' | 'failed' | 'not-run';
  checkCached?: boolean;
  /** Why nothing qualifies (one line), when ok is false. */
  reason?: string;
  code?: string;
  hint?: string;
  kernel: string;
  privileges: Privileges;
  /** Every CRIU looked at, in order of preference. */
  candidates: CriuProbeCandidate[];
}

/** Like findCriu, but reports instead of throwing; looks at every candidate. */
export async function probeCriu(options: FindCriuOptions = {}): Promise<CriuProbe> {
  const base = { kernel: release(), privileges: privileges() };
  const list = candidates(options);
  if (list instanceof CkptError) {
    return {
      ok: false,
      found: false,
      check: 'not-run',
      reason: list.message,
      code: list.code,
      hint: list.hint,
      ...base,
      candidates: [],
    };
  }
  const seen: CriuProbeCandidate[] = [];
  let chosen: { c: Candidate; v: Verdict } | undefined;
  let firstBad: { c: Candidate; v: Verdict } | undefined;
  for (const c of list) {
    const v = await judge(c, options.cache);
    seen.push({
      path: c.path,
      source: c.source,
      version: v.versionText,
      check: v.check ? (v.check.ok ? 'passed' : 'failed') : 'not-run',
      reason: v.error?.message,
    });
    if (v.info && !chosen) chosen = { c, v };
    if (!v.info && !firstBad) firstBad = { c, v };
  }
  if (chosen) {
    return {
      ok: true,
      found: true,
      path: chosen.c.path,
      source: chosen.c.source,
      version: chosen.v.versionText,
      check: 'passed',
      checkCached: chosen.v.check?.cached ?? false,
      ...base,
      candidates: seen,
    };
  }
  const err = firstBad?.v.error ?? notFound(options);
  return {
    ok: false,
    found: firstBad !== undefined,
    path: firstBad?.c.path,
    source: firstBad?.c.source,
    version: firstBad?.v.versionText,
    check: firstBad?.v.check ? 'failed' : 'not-run',
    reason: err.message,
    code: err.code,
    hint: err.hint,
    ...base,
    candidates: seen,
  };
}

// Whether one CRIU binary qualifies: at least MIN_CRIU_VERSION, the file
// capabilities a user's CRIU needs (for a caller other than root), and a passing
// `criu check`. judge() reports every step for findCriu and probeCriu.
import { CkptError, ErrorCodes } from '../../errors.js';
import { FOR_USERS_HINT, fileCapabilities, missingUserCaps, USER_CRIU_SETCAP } from './caps.js';
import { checkCriu, type CheckOutcome } from './check.js';
import { SETUP_HINT } from './paths.js';
import { isExecutable, realOrSelf } from './programs.js';
import { compareVersions, criuVersion, formatVersion, MIN_CRIU_VERSION, type CriuVersion } from './version.js';

export type CriuSource = 'env' | 'for-users' | 'private' | 'system';

export interface CriuInfo {
  /** Absolute path of the criu binary to run. */
  path: string;
  version: CriuVersion;
  source: CriuSource;
}

/** A CRIU to consider, and where it came from. */
export interface Candidate {
  path: string;
  source: CriuSource;
  /** Why this one cannot be run by the caller at all (the for-users copy, not in its group). */
  unusable?: CkptError;
}

/** What judge() found: info when the candidate qualifies, else the error saying why not. */
export interface Verdict {
  info?: CriuInfo;
  error?: CkptError;
  check?: CheckOutcome;
  versionText?: string;
}

export async function judge(c: Candidate, cache: boolean | undefined): Promise<Verdict> {
  if (c.unusable) return { error: c.unusable };
  let version: CriuVersion;
  try {
    version = await criuVersion(c.path);
  } catch (err) {
    return { error: err as CkptError };
  }
  const versionText = formatVersion(version);
  const where = c.source === 'env' ? `${c.path} (from CKPT_CRIU)` : c.path;
  if (compareVersions(version, MIN_CRIU_VERSION) < 0) {
    return {
      versionText,
      error: new CkptError(
        ErrorCodes.CRIU_TOO_OLD,
        `CRIU ${versionText} at ${where} is too old: ckpt needs CRIU ≥ ${MIN_CRIU_VERSION.major}.${MIN_CRIU_VERSION.minor}`,
        { hint: SETUP_HINT, details: { path: c.path, source: c.source, version: versionText } },
      ),
    };
  }
  const root = process.geteuid?.() === 0;
  if (!root) {
    // A user's CRIU works through its file capabilities: name exactly the missing ones.
    const caps = await fileCapabilities(c.path);
    const missing = caps ? missingUserCaps(caps) : [];
    if (caps && missing.length > 0) {
      const why = `lacks the file capabilit${missing.length > 1 ? 'ies' : 'y'} ${missing.join(', ')} (has: ${caps.join(',') || 'none'})`;
      return {
        versionText,
        check: { ok: false, cached: false, error: why },
        error: new CkptError(ErrorCodes.CRIU_CHECK_FAILED, `${where} cannot checkpoint as a user other than root: it ${why}`, {
          hint: `${FOR_USERS_HINT}; or as root: setcap ${USER_CRIU_SETCAP} ${realOrSelf(c.path)}`,
          details: { path: c.path, source: c.source, version: versionText, missingCapabilities: missing, capabilities: caps },
        }),
      };
    }
  }
  const check = await checkCriu(c.path, version, cache === undefined ? {} : { cache });
  if (!check.ok) {
    return {
      versionText,
      check,
      error: new CkptError(ErrorCodes.CRIU_CHECK_FAILED, `criu check${root ? '' : ' --unprivileged'} failed for ${where}: ${check.error}`, {
        hint: root ? SETUP_HINT : FOR_USERS_HINT,
        details: { path: c.path, source: c.source, version: versionText, criuError: check.error },
      }),
    };
  }
  return { info: { path: c.path, version, source: c.source }, check, versionText };
}

/**
 * Whether one criu binary qualifies (≥ 4.2 and `criu check` passes). Throws
 * CRIU_NOT_FOUND / CRIU_TOO_OLD / CRIU_CHECK_FAILED.
 */
export async function qualifyCriu(path: string, source: CriuSource, options: { cache?: boolean } = {}): Promise<CriuInfo> {
  if (!isExecutable(path)) {
    throw new CkptError(ErrorCodes.CRIU_NOT_FOUND, `${path} is not an executable file`, { hint: SETUP_HINT, details: { path } });
  }
  const v = await judge({ path, source }, options.cache);
  if (v.info) return v.info;
  throw v.error ?? new CkptError(ErrorCodes.CRIU_CHECK_FAILED, `${path} does not qualify`, { hint: SETUP_HINT });
}

// How `ckpt setup criu` reports a failure: CRIU_INSTALL, and when ckpt cannot
// install CRIU here, what the user can do instead.
import { CkptError, ErrorCodes } from '../../errors.js';

export function installError(message: string, options: { hint?: string; cause?: unknown; details?: Record<string, unknown> } = {}): CkptError {
  return new CkptError(ErrorCodes.CRIU_INSTALL, message, options);
}

/** What ckpt needs, and how to get it by hand on this distribution (os: /etc/os-release fields). */
export function manualHint(os: Record<string, string> = {}): string {
  const like = `${os.ID ?? ''} ${os.ID_LIKE ?? ''}`;
  const rhel = /\b(rhel|fedora|centos|rocky|almalinux)\b/.test(like);
  const how = rhel
    ? '`dnf install criu` when its `criu --version` is ≥ 4.2, else build CRIU ≥ 4.2 from source (README: RHEL-family)'
    : 'your distribution\'s package when it is ≥ 4.2, else built from source';
  return `ckpt needs a CRIU ≥ 4.2 that passes \`criu check\` (${how}); then set CKPT_CRIU=/path/to/criu`;
}

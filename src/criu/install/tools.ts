// The system tools `ckpt setup criu` runs (apt-get, dpkg, patchelf, setcap):
// running them with failures turned into CRIU_INSTALL errors, and installing the
// missing ones through apt-get.
import { arch } from 'node:os';
import { errnoCode, type CkptError } from '../../errors.js';
import { runTool, type RunResult } from '../../util/spawn.js';
import { trustedTool } from '../../util/trusted-tool.js';
import { which } from '../locate/programs.js';
import { installError, manualHint } from './errors.js';

/** The reason in apt's (or another tool's) output: its `E:` lines, else its last line. */
function aptReason(r: RunResult): string {
  const lines = `${r.stderr}\n${r.stdout}`.split('\n').map((l) => l.trim()).filter(Boolean);
  const e = lines.filter((l) => /^E:/.test(l));
  const pick = e.length ? e.slice(0, 2).join(' ') : (lines.at(-1) ?? `exit code ${r.code ?? r.signal}`);
  return pick.replace(/\s+/g, ' ');
}

/** Runs a tool in the C locale; CRIU_INSTALL naming `what` when it cannot run or exits non-zero. */
export async function mustRun(what: string, command: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  let r: RunResult;
  try {
    r = await runTool(trustedTool(command), args, { timeoutMs, env: { ...process.env, LC_ALL: 'C', ...env } });
  } catch (err) {
    throw installError(`${what}: cannot run ${command}: ${errnoCode(err) ?? String(err)}`, { cause: err });
  }
  if (r.code !== 0) {
    throw installError(`${what} failed: ${aptReason(r)}`, { details: { command: [command, ...args].join(' '), exit: r.code ?? r.signal } });
  }
  return r;
}

/** The Debian multiarch triplet (x86_64-linux-gnu …). */
export async function multiarch(): Promise<string> {
  try {
    const r = await runTool(trustedTool('dpkg-architecture'), ['-qDEB_HOST_MULTIARCH'], { timeoutMs: 10_000 });
    const t = r.stdout.trim();
    if (r.code === 0 && t) return t;
  } catch {
    // dpkg-dev absent: fall through
  }
  let m = '';
  try {
    m = (await runTool(trustedTool('uname'), ['-m'], { timeoutMs: 5_000 })).stdout.trim();
  } catch {
    m = arch() === 'x64' ? 'x86_64' : arch() === 'arm64' ? 'aarch64' : arch();
  }
  const map: Record<string, string> = {
    x86_64: 'x86_64-linux-gnu',
    aarch64: 'aarch64-linux-gnu',
    ppc64le: 'powerpc64le-linux-gnu',
    s390x: 's390x-linux-gnu',
    riscv64: 'riscv64-linux-gnu',
  };
  const t = map[m];
  if (!t) throw installError(`unsupported machine architecture '${m}'`, { hint: manualHint() });
  return t;
}

export interface NeededProgram {
  /** The program's name on PATH. */
  name: string;
  /** The Debian/Ubuntu package that holds it. */
  pkg: string;
  /** When it is missing: why it cannot be installed here (undefined: apt-get may try). */
  cannotInstall?: () => CkptError | undefined;
}

/** The path of a program, installing its package with apt-get first when it is missing. */
export async function ensureProgram(p: NeededProgram, progress: (m: string) => void): Promise<string> {
  const found = which(p.name);
  if (found) return found;
  const blocked = p.cannotInstall?.();
  if (blocked) throw blocked;
  progress(p.pkg === p.name ? `installing ${p.name} (Debian package)` : `installing ${p.name} (package ${p.pkg})`);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  const args = ['install', '-y', '-qq', '--no-install-recommends', p.pkg];
  // The package lists may be missing or stale: update them only when the first try fails.
  const first = await runTool(trustedTool('apt-get'), args, { timeoutMs: 600_000, env: { ...process.env, ...env } }).catch(() => undefined);
  if (first?.code !== 0) {
    await mustRun('apt-get update', 'apt-get', ['update', '-qq'], 600_000, env);
    await mustRun(`apt-get install ${p.pkg}`, 'apt-get', args, 600_000, env);
  }
  const path = which(p.name);
  if (!path) throw installError(`${p.name} is still missing after installing ${p.pkg === p.name ? 'it' : p.pkg}`);
  return path;
}

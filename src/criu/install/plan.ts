// Which install recipe fits this system, decided from /etc/os-release and apt's
// sources alone.
//
// Debian 12's CRIU (3.17) fails `criu check` on recent kernels and trixie's 4.1
// cannot dump TCP sockets on Linux ≥ 6.16; CRIU ≥ 4.2 works. Debian therefore
// takes criu and the libraries that must match it (SID_PACKAGES) from sid and
// everything else (e.g. glibc ≥ 2.38) from trixie; Ubuntu takes both from its
// development series (`devel`: Ubuntu syncs CRIU from Debian), main and universe.
// Both use the mirror apt already uses. Other systems get an error that says what
// ckpt needs instead.
import { readFileSync } from 'node:fs';
import { aptSources, type AptSource } from './apt-sources.js';
import { installError, manualHint } from './errors.js';

/** Packages taken from unstable: CRIU itself and the libraries that must match it. */
export const SID_PACKAGES = ['criu', 'libcompel1', 'libnet9', 'libnl-3-200'];
export const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
export const UBUNTU_KEYRING = '/usr/share/keyrings/ubuntu-archive-keyring.gpg';

export interface InstallPlan {
  distro: 'debian' | 'ubuntu';
  /** The archive apt already uses (its URI, signed-by). */
  mirror: AptSource;
  /** Suites fetched from it, and the components. */
  suites: string[];
  components: string[];
  /** Suite whose CRIU packages are pinned above the others (Debian: sid), if any. */
  pinSuite?: string;
  keyring: string;
}

/** The fields of /etc/os-release (none when it cannot be read). */
export function osRelease(): Record<string, string> {
  try {
    const out: Record<string, string> = {};
    for (const line of readFileSync('/etc/os-release', 'utf8').split('\n')) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line);
      if (m?.[1]) out[m[1]] = (m[2] ?? '').replace(/^"(.*)"$/, '$1');
    }
    return out;
  } catch {
    return {};
  }
}

/** The main Debian archive among apt's sources: a plain release suite (no -security/-updates), an http(s) URI. */
export function debianMirror(sources: AptSource[] = aptSources()): AptSource {
  const plain = (s: string): boolean => /^[a-z]+$/.test(s) && s !== 'experimental';
  const usable = sources.filter((s) => /^https?:\/\//.test(s.uri) && !/-security\/?$/.test(s.uri));
  const main = usable.find((s) => s.suites.some(plain)) ?? usable.find((s) => s.suites.some((x) => !x.includes('security')));
  if (!main) {
    throw installError('found no Debian archive among apt sources (no http(s) `deb` entry with a release suite)', {
      hint: 'configure a Debian mirror in /etc/apt/sources.list.d/, or install CRIU ≥ 4.2 by hand and set CKPT_CRIU',
    });
  }
  return { ...main, uri: main.uri.replace(/\/+$/, '') };
}

/** The Ubuntu archive among apt's sources: archive/ports (any mirror), not the security pocket. */
export function ubuntuMirror(sources: AptSource[] = aptSources()): AptSource {
  const usable = sources.filter((s) => /^https?:\/\//.test(s.uri) && !/security\.ubuntu\.com/.test(s.uri));
  const main =
    usable.find((s) => /\/ubuntu(-ports)?\/?$/.test(s.uri) && s.suites.some((x) => /^[a-z]+$/.test(x))) ??
    usable.find((s) => s.suites.some((x) => /^[a-z]+$/.test(x)));
  if (!main) {
    throw installError('found no Ubuntu archive among apt sources (no http(s) `deb` entry with a release suite)', {
      hint: manualHint({ ID: 'ubuntu' }),
    });
  }
  return { ...main, uri: main.uri.replace(/\/+$/, '') };
}

/** Debian or Ubuntu (or a derivative naming it in ID_LIKE) with apt-get and dpkg; else CRIU_INSTALL, saying what to do. */
export function supportedDistro(os: Record<string, string>, tools: { apt: boolean }): 'debian' | 'ubuntu' {
  const name = os.PRETTY_NAME ?? os.ID ?? 'this system';
  const ubuntu = os.ID === 'ubuntu' || / ubuntu /.test(` ${os.ID_LIKE ?? ''} `);
  if (!tools.apt || (os.ID !== 'debian' && !ubuntu)) {
    throw installError(`cannot install CRIU automatically on ${name}: ckpt's recipe needs Debian or Ubuntu (apt-get and dpkg)`, {
      hint: manualHint(os),
      details: { os: os.ID, idLike: os.ID_LIKE },
    });
  }
  return ubuntu ? 'ubuntu' : 'debian';
}

/**
 * How CRIU can be installed here: Debian takes CRIU from sid and the rest from
 * trixie; Ubuntu takes both from its development series, on the archive apt
 * already uses. Any other system: a CRIU_INSTALL error that says exactly what
 * ckpt needs instead.
 */
export function installPlan(os: Record<string, string>, sources: () => AptSource[], tools: { apt: boolean }): InstallPlan {
  if (supportedDistro(os, tools) === 'ubuntu') {
    return { distro: 'ubuntu', mirror: ubuntuMirror(sources()), suites: ['devel'], components: ['main', 'universe'], keyring: UBUNTU_KEYRING };
  }
  return { distro: 'debian', mirror: debianMirror(sources()), suites: ['sid', 'trixie'], components: ['main'], pinSuite: 'sid', keyring: DEBIAN_KEYRING };
}

// apt's configured sources: `ckpt setup criu` fetches from the mirror apt already
// uses. Reads both the classic one-line format and deb822 `.sources` files.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface AptSource {
  uri: string;
  suites: string[];
  signedBy?: string;
  file: string;
}

/** The `deb` entries of apt's configuration (classic one-line and deb822 formats). */
export function parseAptSources(text: string, file: string): AptSource[] {
  return file.endsWith('.sources') ? parseDeb822(text, file) : parseOneLine(text, file);
}

function parseDeb822(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields: Record<string, string> = {};
    let last: string | undefined;
    for (const raw of stanza.split('\n')) {
      if (raw.startsWith('#')) continue;
      if (/^\s/.test(raw) && last) {
        fields[last] += ` ${raw.trim()}`;
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(raw);
      if (m?.[1]) {
        last = m[1].toLowerCase();
        fields[last] = m[2] ?? '';
      }
    }
    if (!(fields.types ?? '').split(/\s+/).includes('deb')) continue;
    if (/^(no|false|0)$/i.test(fields.enabled ?? 'yes')) continue;
    const suites = (fields.suites ?? '').split(/\s+/).filter(Boolean);
    const signed = fields['signed-by']?.trim();
    for (const uri of (fields.uris ?? '').split(/\s+/).filter(Boolean)) {
      out.push({ uri, suites, file, ...(signed && signed.startsWith('/') && !signed.includes(' ') ? { signedBy: signed } : {}) });
    }
  }
  return out;
}

function parseOneLine(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)/.exec(line);
    if (!m?.[2] || !m[3]) continue;
    const signed = /(?:^|\s)signed-by=(\S+)/.exec(m[1] ?? '')?.[1];
    out.push({ uri: m[2], suites: [m[3]], file, ...(signed ? { signedBy: signed } : {}) });
  }
  return out;
}

/** Every `deb` source apt is configured with. */
export function aptSources(etc = '/etc/apt'): AptSource[] {
  const files: string[] = [];
  if (existsSync(join(etc, 'sources.list'))) files.push(join(etc, 'sources.list'));
  try {
    for (const name of readdirSync(join(etc, 'sources.list.d')).sort()) {
      if (name.endsWith('.list') || name.endsWith('.sources')) files.push(join(etc, 'sources.list.d', name));
    }
  } catch {
    // no directory
  }
  const out: AptSource[] = [];
  for (const f of files) {
    try {
      out.push(...parseAptSources(readFileSync(f, 'utf8'), f));
    } catch {
      // unreadable: skip
    }
  }
  return out;
}

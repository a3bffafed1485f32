// The checkpointer registry: components register themselves; callers ask by name
// (`--crs`, CKPT_CRS) or let the highest-priority available one be chosen — never
// `none`, which saves nothing and is used only when named.
import { CkptError, ErrorCodes } from '../errors.js';
import type { Availability, Checkpointer } from './types.js';
import { criuCheckpointer } from './criu/index.js';
import { noneCheckpointer } from './none/index.js';
import { selfCheckpointer } from './self/index.js';

const components = new Map<string, Checkpointer>();
// The built-in components, registered once whoever imports the registry first.
for (const c of [criuCheckpointer, selfCheckpointer, noneCheckpointer]) components.set(c.name, c);

export function registerCheckpointer(component: Checkpointer): void {
  components.set(component.name, component);
}

export function checkpointers(): Checkpointer[] {
  return [...components.values()].sort((a, b) => b.priority - a.priority);
}

export function getCheckpointer(name: string): Checkpointer {
  const c = components.get(name);
  if (!c) {
    throw new CkptError(ErrorCodes.CRS_UNKNOWN, `unknown checkpointer '${name}'`, {
      hint: `choose one of: ${[...components.keys()].join(', ')}`,
    });
  }
  return c;
}

export interface SelectOptions {
  /** A component by name; otherwise CKPT_CRS; otherwise automatic. */
  name?: string;
  /** Only components that can snapshot another process (for `ckpt checkpoint --pid`). */
  transparent?: boolean;
  /** Whether the program registered self callbacks (self is only chosen automatically then). */
  selfRegistered?: boolean;
}

export interface Selection {
  component: Checkpointer;
  availability: Availability;
}

/** Picks the checkpointer to use, or explains why none can work. */
export async function selectCheckpointer(options: SelectOptions = {}): Promise<Selection> {
  const name = options.name ?? process.env.CKPT_CRS;
  if (name) {
    const component = getCheckpointer(name);
    if (options.transparent && !component.transparent) {
      throw new CkptError(ErrorCodes.CRS_UNAVAILABLE, `the '${name}' checkpointer cannot snapshot another process`, {
        hint: 'use --crs criu',
      });
    }
    const availability = await component.probe();
    if (!availability.ok) {
      throw new CkptError(availability.code ?? ErrorCodes.CRS_UNAVAILABLE, `the '${name}' checkpointer cannot work here: ${availability.reason}`, {
        hint: availability.hint,
      });
    }
    return { component, availability };
  }
  const reasons: string[] = [];
  const refusals: Availability[] = [];
  for (const component of checkpointers()) {
    if (options.transparent && !component.transparent) continue;
    // `none` saves nothing: it is used only when asked for by name, never by default
    // (a snapshot of nothing whose restart reruns the program would lose work silently).
    if (component.name === 'none') continue;
    if (component.name === 'self' && !options.selfRegistered) {
      reasons.push('self: the program registered no save()/load() callbacks (registerSelf)');
      continue;
    }
    const availability = await component.probe();
    if (availability.ok) return { component, availability };
    reasons.push(`${component.name}: ${availability.reason}${availability.hint ? ` (${availability.hint})` : ''}`);
    refusals.push(availability);
  }
  // A single candidate (criu, for another process) keeps its specific code.
  const only = options.transparent && refusals.length === 1 ? refusals[0] : undefined;
  throw new CkptError(only?.code ?? ErrorCodes.CRS_UNAVAILABLE, `no checkpointer can work here: ${reasons.join('; ')}`, {
    hint:
      only?.hint ??
      (options.transparent
        ? 'run `ckpt doctor`'
        : 'call registerSelf({ save, load }) to use the self checkpointer, make CRIU work (`ckpt doctor`), or ask for `none` by name to save nothing'),
  });
}

// Small composable validators for what arrives over a connection: every message
// field is checked once, where it is read, and an unexpected value is one
// ECKPT_OOB_PROTOCOL error naming the field — never a cast.
import { CkptError, ErrorCodes } from '../errors.js';

/** Returns `v` as a T, or throws naming `path` and what was expected. */
export type Check<T> = (v: unknown, path: string) => T;
export type Checked<C> = C extends Check<infer T> ? T : never;

export class ProtocolError extends CkptError {
  constructor(message: string) {
    super(ErrorCodes.OOB_PROTOCOL, message);
  }
}

function expected(path: string, what: string, v: unknown): never {
  const got = v === undefined ? 'nothing' : typeof v === 'string' ? `'${v.length > 40 ? `${v.slice(0, 40)}…` : v}'` : Array.isArray(v) ? 'an array' : typeof v;
  throw new ProtocolError(`${path} must be ${what}, got ${got}`);
}

export const int: Check<number> = (v, p) => (Number.isSafeInteger(v) ? (v as number) : expected(p, 'a whole number', v));
export const count: Check<number> = (v, p) => (Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : expected(p, 'a count (≥ 0)', v));
export const num: Check<number> = (v, p) => (typeof v === 'number' && Number.isFinite(v) ? v : expected(p, 'a number', v));
export const str: Check<string> = (v, p) => (typeof v === 'string' ? v : expected(p, 'a string', v));
export const bool: Check<boolean> = (v, p) => (typeof v === 'boolean' ? v : expected(p, 'true or false', v));
export const unknown: Check<unknown> = (v) => v;

export function literal<const L extends readonly string[]>(...values: L): Check<L[number]> {
  return (v, p) => (typeof v === 'string' && values.includes(v) ? (v as L[number]) : expected(p, values.map((x) => `'${x}'`).join(' or '), v));
}

export function optional<T>(check: Check<T>): Check<T | undefined> {
  return (v, p) => (v === undefined ? undefined : check(v, p));
}

export function nullable<T>(check: Check<T>): Check<T | null> {
  return (v, p) => (v === null ? null : check(v, p));
}

export function array<T>(check: Check<T>, length?: number): Check<T[]> {
  return (v, p) => {
    if (!Array.isArray(v)) return expected(p, 'an array', v);
    if (length !== undefined && v.length !== length) throw new ProtocolError(`${p} must have ${length} elements, has ${v.length}`);
    return v.map((x, i) => check(x, `${p}[${i}]`));
  };
}

type Shape = Record<string, Check<unknown>>;
type Out<S extends Shape> = { [K in keyof S as undefined extends Checked<S[K]> ? never : K]: Checked<S[K]> } & {
  [K in keyof S as undefined extends Checked<S[K]> ? K : never]?: Checked<S[K]>;
};

/** An object with these fields (others are ignored and not returned). */
export function object<S extends Shape>(shape: S): Check<Out<S>> {
  return (v, p) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return expected(p, 'an object', v);
    const out: Record<string, unknown> = {};
    for (const [k, check] of Object.entries(shape)) {
      const x = check((v as Record<string, unknown>)[k], `${p}.${k}`);
      if (x !== undefined) out[k] = x;
    }
    return out as Out<S>;
  };
}

/** Validates `v` as a `what` (the start of every error message). */
export function parse<T>(check: Check<T>, v: unknown, what: string): T {
  return check(v, what);
}

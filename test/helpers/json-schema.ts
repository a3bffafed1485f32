// A small JSON Schema (draft 2020-12) validator for tests: the subset the schemas in
// docs/schemas/ use — type, const, enum, required, properties, additionalProperties,
// items, minItems/maxItems, minimum/maximum, pattern, allOf/anyOf/oneOf/not, and $ref
// to local $defs or to another schema file of the same directory. An unknown keyword
// fails loudly, so a schema never says more than this checks.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export type Schema = Record<string, unknown>;

const KNOWN = new Set([
  '$schema', '$id', '$defs', 'title', 'description', 'type', 'const', 'enum', 'required', 'properties',
  'additionalProperties', 'items', 'minItems', 'maxItems', 'minimum', 'maximum', 'pattern',
  'allOf', 'anyOf', 'oneOf', 'not', '$ref',
]);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function hasType(v: unknown, t: string): boolean {
  if (t === 'integer') return Number.isInteger(v);
  if (t === 'number') return typeof v === 'number' && Number.isFinite(v);
  return typeOf(v) === t;
}

const equal = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Schemas of one directory, by file name, for `$ref: "other.schema.json"`. */
export class SchemaSet {
  private readonly cache = new Map<string, Schema>();
  constructor(private readonly dir: string) {}

  load(file: string): Schema {
    let s = this.cache.get(file);
    if (!s) {
      s = JSON.parse(readFileSync(join(this.dir, file), 'utf8')) as Schema;
      this.cache.set(file, s);
    }
    return s;
  }

  /** Every way `value` breaks the schema in `file` ([] when it conforms), each with its JSON path. */
  validate(file: string, value: unknown): string[] {
    const root = this.load(file);
    const errors: string[] = [];
    this.check(root, root, value, '$', errors);
    return errors;
  }

  private resolve(ref: string, root: Schema): { schema: Schema; root: Schema } {
    const [file, pointer = ''] = ref.split('#');
    const base = file ? this.load(file) : root;
    let node: unknown = base;
    for (const part of pointer.split('/').filter(Boolean)) node = (node as Record<string, unknown>)[part];
    if (typeof node !== 'object' || node === null) throw new Error(`unresolvable $ref ${ref}`);
    return { schema: node as Schema, root: base };
  }

  private check(s: Schema, root: Schema, v: unknown, path: string, errors: string[]): void {
    for (const k of Object.keys(s)) if (!KNOWN.has(k)) throw new Error(`schema keyword ${k} at ${path} is not supported by this validator`);
    const fail = (msg: string): void => void errors.push(`${path}: ${msg}`);
    const sub = (schema: Schema, value: unknown, p: string, r = root) => {
      const e: string[] = [];
      this.check(schema, r, value, p, e);
      return e;
    };
    if (typeof s.$ref === 'string') {
      const { schema, root: r } = this.resolve(s.$ref, root);
      errors.push(...sub(schema, v, path, r));
    }
    if (s.type !== undefined) {
      const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
      if (!types.some((t) => hasType(v, t))) return fail(`is ${typeOf(v)}, not ${types.join(' or ')}`);
    }
    if ('const' in s && !equal(v, s.const)) fail(`is ${JSON.stringify(v)}, not ${JSON.stringify(s.const)}`);
    if (Array.isArray(s.enum) && !s.enum.some((e) => equal(e, v))) fail(`${JSON.stringify(v)} is not one of ${JSON.stringify(s.enum)}`);
    if (typeof v === 'number') {
      if (typeof s.minimum === 'number' && v < s.minimum) fail(`${v} < minimum ${s.minimum}`);
      if (typeof s.maximum === 'number' && v > s.maximum) fail(`${v} > maximum ${s.maximum}`);
    }
    if (typeof v === 'string' && typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(v)) fail(`${JSON.stringify(v)} does not match ${s.pattern}`);
    if (Array.isArray(v)) {
      if (typeof s.minItems === 'number' && v.length < s.minItems) fail(`fewer than ${s.minItems} items`);
      if (typeof s.maxItems === 'number' && v.length > s.maxItems) fail(`more than ${s.maxItems} items`);
      if (s.items && typeof s.items === 'object') v.forEach((x, i) => errors.push(...sub(s.items as Schema, x, `${path}[${i}]`)));
    }
    if (typeOf(v) === 'object') {
      const o = v as Record<string, unknown>;
      for (const r of (s.required as string[] | undefined) ?? []) if (!(r in o)) fail(`lacks required ${r}`);
      const props = (s.properties as Record<string, Schema> | undefined) ?? {};
      for (const [k, x] of Object.entries(o)) {
        if (props[k]) errors.push(...sub(props[k]!, x, `${path}.${k}`));
        else if (s.additionalProperties === false) fail(`has unexpected field ${k}`);
        else if (typeof s.additionalProperties === 'object') errors.push(...sub(s.additionalProperties as Schema, x, `${path}.${k}`));
      }
    }
    for (const a of (s.allOf as Schema[] | undefined) ?? []) errors.push(...sub(a, v, path));
    if (Array.isArray(s.anyOf)) {
      const each = (s.anyOf as Schema[]).map((a) => sub(a, v, path));
      if (!each.some((e) => e.length === 0)) fail(`matches none of anyOf: ${each.map((e) => e.join('; ')).join(' | ')}`);
    }
    if (Array.isArray(s.oneOf)) {
      const each = (s.oneOf as Schema[]).map((a) => sub(a, v, path));
      const n = each.filter((e) => e.length === 0).length;
      if (n !== 1) fail(n === 0 ? `matches none of oneOf: ${each.map((e) => e.join('; ')).join(' | ')}` : `matches ${n} of oneOf`);
    }
    if (s.not && typeof s.not === 'object' && sub(s.not as Schema, v, path).length === 0) fail(`matches a schema it must not: ${JSON.stringify(s.not)}`);
  }
}

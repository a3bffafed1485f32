// The one JSON envelope of every `ckpt … --json` command. Success: `{ "ok": true, … }`
// with the command's own fields (json-shapes.ts, one schema each in docs/schemas/);
// failure: `{ "ok": false, "error": { code, message, hint, details? } }` on stdout,
// and the same error as one human line on stderr. Rules every shape keeps:
// a snapshot's directory is `snapshot`, sizes are `bytes`, times `…Ms`, pids numbers,
// `crs` is `{ name, version }`, and a fact a command always reports is null when it
// has no value (never absent).
import { CkptError } from '../errors.js';
import type { JsonOutputs } from './json-shapes.js';
import { formatError } from './output.js';

export type { JsonOutputs } from './json-shapes.js';

export interface JsonError {
  code: string;
  message: string;
  /** What to do about it; null when there is nothing to add. */
  hint: string | null;
  /** Structured facts of the error (the paths, the problems found…), when it has any. */
  details?: Record<string, unknown>;
}

export type JsonSuccess<K extends keyof JsonOutputs> = { ok: true } & JsonOutputs[K];
export interface JsonFailure {
  ok: false;
  error: JsonError;
}

/** The schema file in docs/schemas/ that a command's success output follows. */
export function schemaFile(command: keyof JsonOutputs): string {
  return `ckpt-${command.replace(/ /g, '-')}.schema.json`;
}

interface Out {
  write(text: string): unknown;
}

function write(value: unknown, out: Out = process.stdout): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** The success envelope of `command`: its body is checked against the command's shape. */
export function jsonResult<K extends keyof JsonOutputs>(command: K, body: JsonOutputs[K]): JsonSuccess<K> {
  void command;
  return { ok: true, ...body };
}

/** Prints a command's success output (typed: a field renamed or retyped does not compile). */
export function printResult<K extends keyof JsonOutputs>(command: K, body: JsonOutputs[K]): void {
  write(jsonResult(command, body));
}

/** The failure envelope: a CkptError as it is, anything else as ECKPT_INTERNAL. */
export function errorJson(err: unknown): JsonFailure {
  if (err instanceof CkptError) {
    const details = Object.fromEntries(Object.entries(err.details).filter(([, v]) => v !== undefined));
    return {
      ok: false,
      error: { code: err.code, message: err.message, hint: err.hint ?? null, ...(Object.keys(details).length ? { details } : {}) },
    };
  }
  return { ok: false, error: { code: 'ECKPT_INTERNAL', message: err instanceof Error ? err.message : String(err), hint: null } };
}

/** Whether the command line asks for --json (before a `--`, after which words are a program's). */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * How a failed command reports: one human line on stderr always, and with --json
 * the failure envelope on stdout too (a script reads stdout, a person the terminal).
 */
export function reportFailure(
  err: unknown,
  json: boolean,
  line = formatError(err),
  io: { stdout: Out; stderr: Out } = process,
): void {
  if (json) write(errorJson(err), io.stdout);
  io.stderr.write(`${line}\n`);
}

// The shape of the option tables. One table per command (and per subcommand) is the
// single source of --help, `ckpt help`, the man page, shell completion and the parser.
// Tables hold no code of the commands: main.ts loads a command only when it runs.

/** What a shell may complete for a value or an operand. */
export type Completion = 'file' | 'dir' | 'pid' | 'job' | 'signal' | 'command' | readonly string[];

export interface OptionSpec {
  /** One letter: `-n`. */
  readonly short?: string;
  /** The value's name in help (`PID`, `DIR`); without it the option is a flag. */
  readonly arg?: string;
  /** May be given more than once (the values are collected). */
  readonly multiple?: boolean;
  /** Shown in help as "(default: …)". */
  readonly default?: string;
  /** One line of meaning. */
  readonly help: string;
  /** The only words accepted (checked while parsing). */
  readonly values?: readonly string[];
  /**
   * A whole number of at least `min` and at most `max` (default: a safe integer; a
   * number of seconds: what a timer can hold), checked while parsing; `pid`: a process id.
   */
  readonly int?: { readonly min: number; readonly max?: number; readonly unit?: string } | 'pid';
  /** What the shell completes for the value (default: `values`). */
  readonly complete?: Completion;
}

export type OptionTable = Readonly<Record<string, OptionSpec>>;

/** The parsed values: strings for options with a value, booleans for flags. */
export type Values<O extends OptionTable> = {
  -readonly [K in keyof O]?: O[K] extends { arg: string } ? (O[K] extends { multiple: true } ? string[] : string) : boolean;
};

export interface OperandSpec {
  readonly name: string;
  readonly complete?: Completion;
}

export interface CommandSpec<O extends OptionTable = OptionTable> {
  /** `checkpoint`, or for a subcommand its own word (`ls`). */
  readonly name: string;
  /** A subcommand's command (`snapshots`): its help is `ckpt snapshots ls --help`. */
  readonly parent?: string;
  readonly summary: string;
  /** The forms, each after `ckpt NAME` (or `ckpt NAME SUB`). */
  readonly usage: readonly string[];
  /** Further paragraphs for --help and the man page. */
  readonly description?: readonly string[];
  readonly options: O;
  readonly operands?: readonly OperandSpec[];
  /** `ckpt snapshots ls|inspect|…`: each with its own table. */
  readonly subcommands?: readonly CommandSpec[];
  /** Options of other tools' habits, unknown here, and what to use instead (`-t` → `--pid`). */
  readonly habits?: Readonly<Record<string, string>>;
  /** Spellings accepted for an option (`-np` → `--np`, as mpirun takes it). */
  readonly aliases?: Readonly<Record<string, string>>;
  /** Options end at the first operand, which starts the command to run (ckpt run). */
  readonly commandAfter?: boolean;
}

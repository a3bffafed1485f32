// `ckpt completion bash|zsh`: completion scripts generated from the option tables.
import { specs } from './spec/index.js';
import type { CommandSpec, Completion, OptionSpec } from './spec/types.js';

/** Every table with the words that lead to it: `checkpoint`, `snapshots ls`. */
function leaves(): { key: string; spec: CommandSpec }[] {
  return specs.filter((s) => s.name !== 'help').flatMap((s) => (s.subcommands ? s.subcommands.map((sub) => ({ key: `${s.name} ${sub.name}`, spec: sub })) : [{ key: s.name, spec: s }]));
}

const groups = specs.filter((s) => s.subcommands);
const words = (o: OptionSpec): Completion | undefined => o.complete ?? o.values;
const spellings = (name: string, o: OptionSpec) => [`--${name}`, ...(o.short ? [`-${o.short}`] : [])];
// The jobs of `ckpt ps --json`, by name (whatever its envelope).
const JOBS = `ckpt ps --json 2>/dev/null | sed -n 's/^ *"name": "\\(.*\\)",*$/\\1/p'`;

function bashWords(c: Completion | undefined): string {
  if (c === undefined) return 'COMPREPLY=()';
  if (typeof c !== 'string') return `COMPREPLY=($(compgen -W "${c.join(' ')}" -- "$cur"))`;
  return {
    file: 'COMPREPLY=($(compgen -f -- "$cur"))',
    dir: 'COMPREPLY=($(compgen -d -- "$cur"))',
    pid: 'COMPREPLY=($(compgen -W "$(ps -eo pid= 2>/dev/null)" -- "$cur"))',
    job: `COMPREPLY=($(compgen -W "$(${JOBS})" -- "$cur"))`,
    signal: 'COMPREPLY=($(compgen -W "$(kill -l | tr -d "0-9)" | tr "\\t" " " | sed "s/SIG//g")" -- "$cur"))',
    command: 'COMPREPLY=($(compgen -c -- "$cur"))',
  }[c];
}

export function bashCompletion(): string {
  const out = ['# bash completion for ckpt (ckpt completion bash; add eval "$(ckpt completion bash)" to ~/.bashrc)', '_ckpt() {'];
  out.push('  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} key=${COMP_WORDS[1]} first=2');
  out.push(`  if [[ $COMP_CWORD -eq 1 ]]; then COMPREPLY=($(compgen -W "${specs.map((s) => s.name).join(' ')} --help --version" -- "$cur")); return; fi`);
  out.push('  case $key in');
  for (const g of groups) {
    out.push(`    ${g.name}) if [[ $COMP_CWORD -eq 2 ]]; then COMPREPLY=($(compgen -W "${g.subcommands!.map((s) => s.name).join(' ')}" -- "$cur")); return; fi`);
    out.push('      key="$key ${COMP_WORDS[2]}"; first=3;;');
  }
  out.push('  esac', '  case "$key:$prev" in');
  for (const { key, spec } of leaves()) {
    for (const [name, o] of Object.entries(spec.options)) {
      if (!o.arg) continue;
      out.push(`    ${spellings(name, o).map((w) => `"${key}:${w}"`).join('|')}) ${bashWords(words(o))}; return;;`);
    }
  }
  out.push('  esac', '  if [[ $cur == -* ]]; then', '    case $key in');
  for (const { key, spec } of leaves()) {
    const all = Object.entries(spec.options).flatMap(([n, o]) => spellings(n, o));
    out.push(`      "${key}") COMPREPLY=($(compgen -W "${[...all, '--help'].join(' ')}" -- "$cur"));;`);
  }
  out.push('    esac', '    return', '  fi', '  case $key in');
  for (const { key, spec } of leaves()) {
    const operand = spec.operands?.[0];
    if (operand) out.push(`    "${key}") ${bashWords(operand.complete)};;`);
  }
  out.push('    help) COMPREPLY=($(compgen -W "' + specs.map((s) => s.name).join(' ') + '" -- "$cur"));;');
  out.push('  esac', '}', 'complete -o default -F _ckpt ckpt', '');
  return out.join('\n');
}

const zq = (text: string) => text.replace(/'/g, "'\\''").replace(/([[\]:])/g, '\\$1');

function zshAction(c: Completion | undefined): string {
  if (c === undefined) return ' ';
  if (typeof c !== 'string') return `(${c.join(' ')})`;
  return { file: '_files', dir: '_files -/', pid: '_pids', job: '_ckpt_jobs', signal: '_signals', command: '_command_names -e' }[c];
}

function zshArguments(spec: CommandSpec): string {
  const specsOut = Object.entries(spec.options).map(([name, o]) => {
    const sp = spellings(name, o);
    const names = sp.length > 1 ? `'(${sp.join(' ')})'{${sp.join(',')}}'` : `'${o.multiple ? '*' : ''}${sp[0]}`;
    const value = o.arg ? `:${zq(o.arg)}:${zshAction(words(o))}` : '';
    return `${names}[${zq(o.help)}]${value}'`;
  });
  specsOut.push("'(- *)'{-h,--help}'[show the help]'");
  const operand = spec.operands?.[0];
  if (spec.commandAfter) specsOut.push("'1:command:_command_names -e'", "'*::arguments:_normal'");
  else if (operand) specsOut.push(`'*:${zq(operand.name)}:${zshAction(operand.complete)}'`);
  return `_arguments -s \\\n        ${specsOut.join(' \\\n        ')}`;
}

export function zshCompletion(): string {
  const desc = (list: readonly CommandSpec[]) => list.map((s) => `'${s.name}:${zq(s.summary)}'`).join(' ');
  const out = ['#compdef ckpt', '# zsh completion for ckpt (ckpt completion zsh > a directory of $fpath, as _ckpt)', ''];
  out.push('_ckpt_jobs() {', `  local -a jobs; jobs=(\${(f)"$(${JOBS})"})`, '  compadd -a jobs', '}', '');
  out.push('_ckpt() {', `  local -a commands; commands=(${desc(specs)})`);
  out.push("  if (( CURRENT == 2 )); then _describe 'command' commands; return; fi");
  out.push('  local key=${words[2]}', '  shift words; (( CURRENT-- ))', '  case $key in');
  for (const g of groups) {
    out.push(`    ${g.name}) local -a subs; subs=(${desc(g.subcommands!)})`);
    out.push("      if (( CURRENT == 2 )); then _describe 'subcommand' subs; return; fi");
    out.push('      key="$key ${words[2]}"; shift words; (( CURRENT-- ));;');
  }
  out.push('  esac', '  case $key in');
  for (const { key, spec } of leaves()) out.push(`    "${key}") ${zshArguments(spec)};;`);
  out.push("    help) _describe 'command' commands;;");
  out.push('  esac', '}', '', '_ckpt "$@"', '');
  return out.join('\n');
}

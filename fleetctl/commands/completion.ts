import type { Command, Option } from 'commander';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';

/**
 * `fleetctl completion bash`: a bash completion script, made from the program itself (its
 * commands, their flags and the global flags), so it never lists a command or flag that does not
 * exist. Unit arguments complete as local unit files and as the units the cluster knows
 * (`fleetctl list-unit-files`, asked with a 1 s timeout and skipped when fleetd is not there).
 */

/** Commands whose operands are units already in the cluster. */
const CLUSTER_UNIT_COMMANDS = new Set([
  'cat',
  'destroy',
  'journal',
  'load',
  'restart',
  'start',
  'status',
  'stop',
  'unload',
]);

/** Commands whose operands are local unit files. */
const FILE_COMMANDS = new Set(['load', 'start', 'submit', 'verify']);

/** The long flags help shows for a command, with `=` for those that take a value. */
function visibleFlags(cmd: Command): string[] {
  const options: readonly Option[] = cmd.createHelp().visibleOptions(cmd);
  return options
    .filter((o) => o.long !== undefined)
    .map((o) => (o.required || o.optional ? `${o.long ?? ''}=` : (o.long ?? '')));
}

/** A bash word list, quoted for a single-quoted string (flags and names hold no quotes). */
function words(list: readonly string[]): string {
  return list.join(' ');
}

/** The completion script for `program`. */
export function bashCompletion(program: Command): string {
  const commands = program
    .createHelp()
    .visibleCommands(program)
    .map((c) => c.name());
  const perCommand = program.commands
    .filter((c) => commands.includes(c.name()))
    .map((c) => `    ${c.name()}) flags='${words(visibleFlags(c))}' ;;`);
  return `# bash completion for fleetctl (made by \`fleetctl completion bash\`)
_fleetctl_units() {
  fleetctl --request-timeout=1 list-unit-files --no-legend --fields=unit 2>/dev/null
}

_fleetctl() {
  local cur=\${COMP_WORDS[COMP_CWORD]}
  local global='${words(visibleFlags(program))}'
  local commands='${words(commands)}'
  local command='' i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case \${COMP_WORDS[i]} in
      -*) ;;
      *) command=\${COMP_WORDS[i]}; break ;;
    esac
  done
  if [[ -z $command ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "$global" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    fi
    [[ \${COMPREPLY[0]-} == *= ]] && compopt -o nospace
    return 0
  fi
  local flags=''
  case $command in
${perCommand.join('\n')}
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$flags $global" -- "$cur"))
    [[ \${COMPREPLY[0]-} == *= ]] && compopt -o nospace
    return 0
  fi
  case $command in
    help) COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
    completion) COMPREPLY=($(compgen -W "bash" -- "$cur")) ;;
    ${[...CLUSTER_UNIT_COMMANDS].filter((c) => !FILE_COMMANDS.has(c)).join(' | ')})
      COMPREPLY=($(compgen -W "$(_fleetctl_units)" -- "$cur")) ;;
    ${[...FILE_COMMANDS].join(' | ')})
      COMPREPLY=($(compgen -f -- "$cur"))
      [[ $command == load || $command == start ]] && COMPREPLY+=($(compgen -W "$(_fleetctl_units)" -- "$cur"))
      ;;
  esac
  return 0
}
complete -F _fleetctl fleetctl
`;
}

/** `fleetctl completion bash`. */
export function registerCompletion(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'completion',
    summary: 'Print a shell completion script',
    usage: 'bash',
    description: [
      'Print the bash completion script for fleetctl: commands, flags, and unit names',
      '(local unit files, and the units in the cluster).',
      '',
      'Load it in the current shell:',
      '\tsource <(fleetctl completion bash)',
      '',
      'The Debian package installs it in /usr/share/bash-completion/completions/fleetctl.',
    ].join('\n'),
  });
  onRun(cmd, ctx, (args) => {
    const [shell] = args;
    if (shell !== 'bash' || args.length !== 1) {
      ctx.err('completion takes one argument, the shell: bash');
      return Promise.resolve(1);
    }
    ctx.write(bashCompletion(program));
    return Promise.resolve(0);
  });
}

import type { Command, Help, Option } from 'commander';
import { VERSION } from '../lib/version.js';
import { envName } from './global-options.js';
import { formatTable } from './table.js';

/**
 * Help text in the layout of fleet's custom template (`fleetctl/help.go`): tab-indented `NAME:`,
 * `USAGE:`, `VERSION:` (root only), `COMMANDS:` (root only), `DESCRIPTION:`, `OPTIONS:` and
 * `GLOBAL OPTIONS:` sections, flags shown as `--flag=default` and aligned with TABs.
 */

/** What `fleetctl` is, as fleet describes itself. */
export const FLEETCTL_SUMMARY =
  'fleetctl is a command-line interface to fleet, the cluster-wide CoreOS init system.';

function optionTerm(option: Option): string {
  const long = option.long ?? '';
  const names = option.short === undefined ? long : `${option.short}, ${long}`;
  const shown = option.defaultValueDescription ?? (option.isBoolean() ? 'false' : '""');
  return `${names}=${shown}`;
}

function optionRows(options: readonly Option[]): string[][] {
  return [...options]
    .sort((a, b) => (a.long ?? '').localeCompare(b.long ?? ''))
    .map((o) => ['', optionTerm(o), o.description]);
}

function indented(lines: readonly string[]): string {
  return lines.map((l) => (l === '' ? '\n' : `\t${l}\n`)).join('');
}

/** The root command of a subcommand. */
function rootOf(cmd: Command): Command {
  let c = cmd;
  while (c.parent !== null) c = c.parent;
  return c;
}

/** Formats help for the program or one of its commands (commander's `formatHelp` hook). */
export function formatHelp(cmd: Command, helper: Help): string {
  const root = rootOf(cmd);
  const isRoot = cmd === root;
  let out = 'NAME:\n';
  out += isRoot ? `\tfleetctl - ${FLEETCTL_SUMMARY}\n` : `\tfleetctl ${cmd.name()} - ${cmd.summary()}\n`;
  out += '\nUSAGE:\n';
  out += isRoot
    ? '\tfleetctl [global options] <command> [command options] [arguments...]\n'
    : `\tfleetctl ${cmd.name()} ${cmd.usage()}\n`;
  if (isRoot) {
    out += `\nVERSION:\n\t${VERSION}\n`;
    out += '\nCOMMANDS:\n';
    out += formatTable(helper.visibleCommands(cmd).map((c) => ['', c.name(), c.summary()]));
  } else {
    const description = cmd.description();
    if (description !== '') out += `\nDESCRIPTION:\n${indented(description.split('\n'))}`;
    const own = helper.visibleOptions(cmd).filter((o) => o.long !== '--help');
    if (own.length > 0) out += `\nOPTIONS:\n${formatTable(optionRows(own))}`;
  }
  if (!isRoot) {
    // fleet repeated the 20-line global block in every command's help; it is shown once, here.
    out += '\nGLOBAL OPTIONS: see "fleetctl help".\n';
    return out;
  }
  const globals = helper.visibleOptions(root).filter((o) => o.long !== '--help' && o.long !== '--version');
  out += `\nGLOBAL OPTIONS:\n${formatTable(optionRows(globals))}`;
  {
    out +=
      `\nEvery global option can also be set with an environment variable, e.g. ${envName('endpoint')} or ` +
      `${envName('ssh-username')}; the command line wins.\n` +
      'Run "fleetctl help <command>" or "fleetctl <command> --help" for more details on a specific command.\n';
  }
  return out;
}

import { DEFAULT_CONFIG_PATH } from './config-loader.js';
import { DEPRECATED_OPTIONS, OPTION_LIST, envName, flagName } from './config-options.js';

/** fleet's one-line description of fleetd. */
export const FLEETD_DESCRIPTION =
  'fleetd is the server component of fleet, a simple orchestration system for scheduling systemd units in a cluster.';

/** The usage line, for errors. */
export function usageLine(argv0 = 'fleetd'): string {
  return `Usage: ${argv0} [--config PATH] [--version] [--<option> VALUE]...`;
}

/** Wraps `text` at `width` columns, each line indented by `indent`. */
function wrap(text: string, indent: string, width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(indent + line);
  return lines.join('\n');
}

/** The `--help` text: how to run fleetd and every option with its default and meaning. */
export function usageText(argv0 = 'fleetd'): string {
  const out: string[] = [
    usageLine(argv0),
    '',
    FLEETD_DESCRIPTION,
    'fleet-ts runs the agent and the engine in this one daemon, on etcd v3.',
    '',
    'Every option is a key in the config file, a FLEET_<OPTION> environment variable and a flag.',
    `Settings apply in this order, the later winning: built-in defaults, the config file (${DEFAULT_CONFIG_PATH}`,
    'if it exists, or --config PATH), environment variables (one that is set wins even when empty), flags.',
    'Boolean flags take no value or an attached one: --disable-engine, --disable-engine=false.',
    '',
    'Flags:',
    '  --config PATH        read this config file instead of the default one (it must exist)',
    '  --version, version   print the version and exit',
    '  --help, -h           print this help and exit',
    '',
    'Options:',
  ];
  for (const o of OPTION_LIST) {
    const flag = o.boolean ? `${flagName(o.name)}[=BOOL]` : `${flagName(o.name)} ${o.metavar}`;
    out.push(`  ${o.name}  (${envName(o.name)}, ${flag})`);
    const shown = o.defaultText === '' ? 'empty' : o.defaultText;
    out.push(wrap(`${o.meaning}. Default: ${shown}.`, '      '));
  }
  out.push(
    '',
    wrap(
      `Deprecated options, accepted and ignored with a warning: ${Object.keys(DEPRECATED_OPTIONS).join(', ')}.`,
      '',
    ),
    '',
    'Signals: SIGTERM or SIGINT stops fleetd and leaves its units running (the machine stays in the',
    'cluster for agent_ttl, so a restarted fleetd takes over); a second one, or 30 s, forces the exit.',
    'SIGHUP reloads the configuration.',
    '',
    'Exit status: 0 after a signal, 1 when fleetd cannot start or is forced to stop, 2 for an invalid',
    'configuration or command line.',
  );
  return `${out.join('\n')}\n`;
}

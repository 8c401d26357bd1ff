import { homedir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { FleetError } from '../lib/errors.js';

/**
 * fleetctl's global flags (docs/fleet-compat.md §1.1) and their `FLEETCTL_*` environment variables (1.2).
 * A flag on the command line wins over the variable, which wins over the default; empty variables
 * are ignored. Unlike fleet, `--debug` works on the command line and `--request-timeout` also
 * bounds API requests.
 */

/** The resolved global options of one run. */
export interface GlobalOptions {
  readonly endpoint: string;
  readonly driver: string;
  readonly etcdKeyPrefix: string;
  readonly keyFile: string;
  readonly certFile: string;
  readonly caFile: string;
  readonly knownHostsFile: string;
  readonly strictHostKeyChecking: boolean;
  /** Seconds. */
  readonly sshTimeout: number;
  readonly tunnel: string;
  /** Seconds. */
  readonly requestTimeout: number;
  readonly sshUsername: string;
  readonly debug: boolean;
  readonly experimentalApi: boolean;
}

type Kind = 'string' | 'bool' | 'seconds';

interface GlobalFlag {
  /** The flag name without dashes. */
  readonly flag: string;
  readonly kind: Kind;
  /** The default as help shows it (`~` stands for the home directory). */
  readonly display: string;
  readonly description: string;
  /** For deprecated aliases: the flag they stand for. */
  readonly aliasOf?: string;
}

/** The default endpoint: the local fleetd's unix socket. */
export const DEFAULT_ENDPOINT = 'unix:///var/run/fleet.sock';

/** Every global flag, in the order help lists them. */
export const GLOBAL_FLAGS: readonly GlobalFlag[] = [
  {
    flag: 'ca-file',
    kind: 'string',
    display: '""',
    description: 'Location of TLS CA file used to secure communication with the fleet API.',
  },
  {
    flag: 'cert-file',
    kind: 'string',
    display: '""',
    description: 'Location of TLS cert file used to secure communication with the fleet API.',
  },
  {
    flag: 'debug',
    kind: 'bool',
    display: 'false',
    description: 'Print out more debug information to stderr.',
  },
  {
    flag: 'driver',
    kind: 'string',
    display: '"API"',
    description:
      'Adapter used to execute fleetctl commands. Only "API" is supported (fleet\'s "etcd" driver is not).',
  },
  {
    flag: 'endpoint',
    kind: 'string',
    display: `"${DEFAULT_ENDPOINT}"`,
    description: 'Location of the fleet API: unix:///path/to/socket, http://host:port or https://host:port.',
  },
  {
    flag: 'etcd-key-prefix',
    kind: 'string',
    display: '"/_coreos.com/fleet/"',
    description: 'Keyspace for fleet data in etcd (etcd driver only; accepted and ignored).',
  },
  {
    flag: 'experimental-api',
    kind: 'bool',
    display: 'true',
    description: 'DEPRECATED: accepted and ignored.',
  },
  {
    flag: 'key-file',
    kind: 'string',
    display: '""',
    description: 'Location of TLS key file used to secure communication with the fleet API.',
  },
  {
    flag: 'known-hosts-file',
    kind: 'string',
    display: '"~/.fleetctl/known_hosts"',
    description: 'File used to store remote machine fingerprints.',
  },
  {
    flag: 'request-timeout',
    kind: 'seconds',
    display: '3',
    description:
      'Amount of time in seconds to allow a single request to the fleet API before considering it failed.',
  },
  {
    flag: 'ssh-timeout',
    kind: 'seconds',
    display: '10',
    description: 'Amount of time in seconds to allow for SSH connection initialization before failing.',
  },
  {
    flag: 'ssh-username',
    kind: 'string',
    display: '"core"',
    description: 'Username to use when connecting to a machine over SSH.',
  },
  {
    flag: 'strict-host-key-checking',
    kind: 'bool',
    display: 'true',
    description: 'Verify host keys presented by remote machines before initiating SSH connections.',
  },
  {
    flag: 'tunnel',
    kind: 'string',
    display: '""',
    description:
      'Establish an SSH tunnel through the provided address (host[:port]) for communication with fleet.',
  },
  {
    flag: 'etcd-cafile',
    kind: 'string',
    display: '""',
    description: 'DEPRECATED: use --ca-file instead.',
    aliasOf: 'ca-file',
  },
  {
    flag: 'etcd-certfile',
    kind: 'string',
    display: '""',
    description: 'DEPRECATED: use --cert-file instead.',
    aliasOf: 'cert-file',
  },
  {
    flag: 'etcd-keyfile',
    kind: 'string',
    display: '""',
    description: 'DEPRECATED: use --key-file instead.',
    aliasOf: 'key-file',
  },
];

/** Go's `strconv.ParseBool`, which fleet used for boolean flags and variables. */
export function parseGoBool(value: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  return undefined;
}

/** Reads a number of seconds (Go float syntax); undefined when it is not one or is negative. */
export function parseSeconds(value: string): number | undefined {
  if (!/^\s*[+]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(value)) return undefined;
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** The camel-case key commander stores a flag under. */
function attributeName(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The environment variable of a flag: `FLEETCTL_` + upper case with `_` for `-`. */
export function envName(flag: string): string {
  return `FLEETCTL_${flag.toUpperCase().replace(/-/g, '_')}`;
}

function secondsArg(value: string): number {
  const n = parseSeconds(value);
  if (n === undefined) throw new InvalidArgumentError('Not a number of seconds.');
  return n;
}

/**
 * Declares the global flags on the program. Booleans get a hidden `--no-<flag>` twin so that
 * `--strict-host-key-checking=false` (rewritten by argv.ts) can turn a default-true flag off.
 * No commander defaults are set: resolution needs to know whether the user gave a flag.
 */
export function addGlobalOptions(program: Command): void {
  for (const g of GLOBAL_FLAGS) {
    let option: Option;
    switch (g.kind) {
      case 'bool':
        option = new Option(`--${g.flag}`, g.description);
        break;
      case 'string':
        option = new Option(`--${g.flag} <value>`, g.description);
        break;
      case 'seconds':
        option = new Option(`--${g.flag} <seconds>`, g.description).argParser(secondsArg);
        break;
    }
    program.addOption(option.default(undefined, g.display));
    if (g.kind === 'bool') program.addOption(new Option(`--no-${g.flag}`).hideHelp());
  }
}

function fromEnv(flag: GlobalFlag, env: Readonly<Record<string, string | undefined>>): unknown {
  const name = envName(flag.flag);
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  switch (flag.kind) {
    case 'string':
      return raw;
    case 'bool': {
      const b = parseGoBool(raw);
      if (b === undefined)
        throw new FleetError(
          'USAGE_INVALID',
          `invalid value ${JSON.stringify(raw)} for ${name}: not a boolean`,
        );
      return b;
    }
    case 'seconds': {
      const n = parseSeconds(raw);
      if (n === undefined)
        throw new FleetError(
          'USAGE_INVALID',
          `invalid value ${JSON.stringify(raw)} for ${name}: not a number of seconds`,
        );
      return n;
    }
  }
}

/**
 * Resolves every global flag: the command line first, then `FLEETCTL_*`, then the default. A
 * deprecated alias counts as its flag. Throws `USAGE_INVALID` for an unreadable variable.
 */
export function resolveGlobalOptions(
  program: Command,
  env: Readonly<Record<string, string | undefined>>,
): GlobalOptions {
  const values = new Map<string, unknown>();
  const fromCli = (flag: string): unknown =>
    program.getOptionValueSource(attributeName(flag)) === 'cli'
      ? (program.getOptionValue(attributeName(flag)) as unknown)
      : undefined;
  for (const g of GLOBAL_FLAGS) {
    if (g.aliasOf !== undefined) continue;
    const aliases = GLOBAL_FLAGS.filter((a) => a.aliasOf === g.flag);
    const cli = [g, ...aliases].map((f) => fromCli(f.flag)).find((v) => v !== undefined);
    const fromVariables =
      cli === undefined
        ? [g, ...aliases].map((f) => fromEnv(f, env)).find((v) => v !== undefined)
        : undefined;
    values.set(g.flag, cli ?? fromVariables);
  }
  const str = (flag: string, fallback: string): string => {
    const v = values.get(flag);
    return typeof v === 'string' ? v : fallback;
  };
  const bool = (flag: string, fallback: boolean): boolean => {
    const v = values.get(flag);
    return typeof v === 'boolean' ? v : fallback;
  };
  const num = (flag: string, fallback: number): number => {
    const v = values.get(flag);
    return typeof v === 'number' ? v : fallback;
  };
  const home = env.HOME ?? homedir();
  const knownHosts = str('known-hosts-file', '~/.fleetctl/known_hosts');
  return {
    endpoint: str('endpoint', DEFAULT_ENDPOINT),
    driver: str('driver', 'API'),
    etcdKeyPrefix: str('etcd-key-prefix', '/_coreos.com/fleet/'),
    keyFile: str('key-file', ''),
    certFile: str('cert-file', ''),
    caFile: str('ca-file', ''),
    knownHostsFile: knownHosts.startsWith('~/') ? join(home, knownHosts.slice(2)) : knownHosts,
    strictHostKeyChecking: bool('strict-host-key-checking', true),
    sshTimeout: num('ssh-timeout', 10),
    tunnel: str('tunnel', ''),
    requestTimeout: num('request-timeout', 3),
    sshUsername: str('ssh-username', 'core'),
    debug: bool('debug', false),
    experimentalApi: bool('experimental-api', true),
  };
}

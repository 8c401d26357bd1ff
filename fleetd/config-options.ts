/* eslint-disable max-lines -- one table of every option drives loading, --help and reloads; splitting it would split the table. */
import {
  formatFileMode,
  formatGoDuration,
  formatHostPort,
  parseBoolean,
  parseBusAddress,
  parseEtcdServers,
  parseFileMode,
  parseGoDuration,
  parseHostPort,
  parseInteger,
  parseIpAddress,
  parseKeyPrefix,
  parseList,
  parseMetadata,
  parsePath,
  parseSeconds,
  bad,
  ok,
  type HostPort,
  type Parsed,
} from './config-values.js';

/**
 * fleetd's options: one table that the loader, the `--help` text, the reload diff and the README
 * all follow. Each option is a key in fleet.conf (`agent_ttl`), an environment variable
 * (`FLEET_AGENT_TTL`) and a flag (`--agent-ttl`).
 */

/** Every option's value, parsed. Empty strings mean "none" where the option says so. */
export interface FleetdOptions {
  readonly etcdServers: readonly string[];
  readonly etcdKeyPrefix: string;
  readonly etcdKeyFile: string;
  readonly etcdCertFile: string;
  readonly etcdCaFile: string;
  readonly etcdUsername: string;
  readonly etcdPassword: string;
  readonly etcdRequestTimeoutMs: number;
  readonly publicIp: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly agentTtlMs: number;
  readonly engineReconcileIntervalMs: number;
  readonly disableEngine: boolean;
  readonly verbosity: number;
  readonly unitsDirectory: string;
  readonly systemdBus: string;
  readonly apiSocket: string;
  readonly apiSocketMode: number;
  readonly apiSocketGroup: string;
  readonly apiReadonlySocket: string;
  readonly apiReadonlySocketMode: number;
  readonly apiReadonlySocketGroup: string;
  readonly apiTcp: HostPort | undefined;
  readonly apiTlsCert: string;
  readonly apiTlsKey: string;
  readonly apiTlsCa: string;
  readonly apiAllowPlainHttp: boolean;
  readonly apiTlsWriters: readonly string[];
  readonly tokenLimit: number;
  readonly unitDropDir: string;
  readonly metricsListen: HostPort | undefined;
  readonly eventHistory: number;
  readonly eventMaxAgeMs: number;
}

/**
 * What a change of the option needs when fleetd reloads on SIGHUP: `live` is applied in place,
 * `api` restarts the API listeners, `server` restarts the registry, agent and engine (and the API,
 * which reads the registry), `none` is read by nothing yet.
 */
export type ReloadScope = 'live' | 'api' | 'server' | 'none';

/** One option of the table. */
export interface OptionSpec<T> {
  /** The fleet.conf key, lower case with underscores. */
  readonly name: string;
  /** The default, as text (parsed with `parse` like any other setting). */
  readonly defaultText: string;
  /** A placeholder for the value in `--help` (`URLS`, `DURATION`). */
  readonly metavar: string;
  /** One sentence for `--help` and the README. */
  readonly meaning: string;
  readonly reload: ReloadScope;
  /** A secret (a password): never shown in logs or the reload diff, only whether it is set. */
  readonly secret?: boolean;
  parse(text: string): Parsed<T>;
  /** Renders a value for logs and the reload diff. */
  format(value: T): string;
}

/** An option without a value type, for code that walks the table. */
export interface AnyOptionSpec {
  readonly key: keyof FleetdOptions;
  readonly name: string;
  readonly defaultText: string;
  readonly metavar: string;
  readonly meaning: string;
  readonly reload: ReloadScope;
  readonly boolean: boolean;
  readonly secret: boolean;
  parse(text: string): Parsed<unknown>;
  format(value: unknown): string;
}

const text = (v: string): string => v;
const yesNo = (v: boolean): string => String(v);
const seconds = (ms: number): string => String(ms / 1000);

/** A group name or numeric ID, or "" for none. */
function parseGroup(t: string): Parsed<string> {
  const g = t.trim();
  return g === '' || /^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(g)
    ? ok(g)
    : bad(`${JSON.stringify(g)} is not a group name or ID`);
}

/** The minimum agent_ttl: the heartbeat runs every ttl/2.5, and etcd leases have whole seconds. */
export const MIN_AGENT_TTL_MS = 2000;

/** The option table, keyed by the property of {@link FleetdOptions}. */
export const OPTIONS: { readonly [K in keyof FleetdOptions]: OptionSpec<FleetdOptions[K]> } = {
  etcdServers: {
    name: 'etcd_servers',
    defaultText: 'http://127.0.0.1:2379',
    metavar: 'URLS',
    meaning: 'etcd v3 client URLs, comma-separated (all http:// or all https://)',
    reload: 'server',
    parse: parseEtcdServers,
    format: (v) => v.join(','),
  },
  etcdKeyPrefix: {
    name: 'etcd_key_prefix',
    defaultText: '/fleet/',
    metavar: 'PREFIX',
    meaning: "prefix of every fleet-ts key in etcd (fleet's v2 data under /_coreos.com/fleet/ is not read)",
    reload: 'server',
    parse: parseKeyPrefix,
    format: text,
  },
  etcdKeyFile: {
    name: 'etcd_keyfile',
    defaultText: '',
    metavar: 'PATH',
    meaning: 'private key of the etcd client certificate (PEM), read at start and on SIGHUP',
    reload: 'server',
    parse: (t) => parsePath(t, true),
    format: text,
  },
  etcdCertFile: {
    name: 'etcd_certfile',
    defaultText: '',
    metavar: 'PATH',
    meaning: 'etcd client certificate (PEM), for etcd client-certificate authentication',
    reload: 'server',
    parse: (t) => parsePath(t, true),
    format: text,
  },
  etcdCaFile: {
    name: 'etcd_cafile',
    defaultText: '',
    metavar: 'PATH',
    meaning: "CA bundle (PEM) that signed etcd's server certificate; the system roots when empty",
    reload: 'server',
    parse: (t) => parsePath(t, true),
    format: text,
  },
  etcdUsername: {
    name: 'etcd_username',
    defaultText: '',
    metavar: 'NAME',
    meaning:
      "etcd user (etcd's role-based access control) fleetd authenticates as, with etcd_password; none when empty. " +
      'Use https:// etcd_servers: over http:// the password crosses the network in clear',
    reload: 'server',
    parse: (t) => {
      const name = t.trim();
      // eslint-disable-next-line no-control-regex
      return /[\s\u0000-\u001f\u007f]/.test(name)
        ? bad(`${JSON.stringify(name)} contains whitespace`)
        : ok(name);
    },
    format: text,
  },
  etcdPassword: {
    name: 'etcd_password',
    defaultText: '',
    metavar: 'PASSWORD',
    meaning:
      'password of etcd_username; prefer fleet.conf (mode 0600) to a flag, which other users see in the process list',
    reload: 'server',
    secret: true,
    parse: (t) => ok(t),
    format: (v) => (v === '' ? '' : '(set)'),
  },
  etcdRequestTimeoutMs: {
    name: 'etcd_request_timeout',
    defaultText: '1.0',
    metavar: 'SECONDS',
    meaning: 'deadline of each etcd request, in seconds (0.1 to 60)',
    reload: 'server',
    parse: (t) => parseSeconds(t, 0.1, 60),
    format: seconds,
  },
  publicIp: {
    name: 'public_ip',
    defaultText: '',
    metavar: 'IP',
    meaning:
      "this machine's address as fleetctl shows it; detected from the default-route interface when empty",
    reload: 'server',
    parse: parseIpAddress,
    format: text,
  },
  metadata: {
    name: 'metadata',
    defaultText: '',
    metavar: 'K=V,...',
    meaning: 'machine metadata matched by [X-Fleet] MachineMetadata, as key=value pairs separated by commas',
    reload: 'server',
    parse: parseMetadata,
    format: (v) =>
      Object.entries(v)
        .map(([k, val]) => `${k}=${val}`)
        .sort()
        .join(','),
  },
  agentTtlMs: {
    name: 'agent_ttl',
    defaultText: '10s',
    metavar: 'DURATION',
    meaning:
      "lease of this machine's presence and unit states (Go duration, at least 2s, rounded up to whole seconds); " +
      'a machine silent for this long is dead and its units move',
    reload: 'server',
    parse: (t) => {
      const d = parseGoDuration(t);
      if (!d.ok) return d;
      if (d.value < MIN_AGENT_TTL_MS) return bad(`${JSON.stringify(t.trim())} is too short: at least 2s`);
      return ok(d.value);
    },
    format: formatGoDuration,
  },
  engineReconcileIntervalMs: {
    name: 'engine_reconcile_interval',
    defaultText: '2',
    metavar: 'SECONDS',
    meaning:
      "seconds between the engine's safety-net reconciles (events drive it otherwise); " +
      'the leader lease lasts 5 times this, as in fleet (0.5 to 600)',
    reload: 'server',
    parse: (t) => parseSeconds(t, 0.5, 600),
    format: seconds,
  },
  disableEngine: {
    name: 'disable_engine',
    defaultText: 'false',
    metavar: 'BOOL',
    meaning: 'never run the engine on this machine (it never leads or schedules); the agent still runs',
    reload: 'server',
    parse: parseBoolean,
    format: yesNo,
  },
  verbosity: {
    name: 'verbosity',
    defaultText: '0',
    metavar: 'N',
    meaning: 'log detail: 0 logs info and above, 1 or more adds debug lines (applied live on SIGHUP)',
    reload: 'live',
    parse: (t) => parseInteger(t, 0, 10),
    format: String,
  },
  unitsDirectory: {
    name: 'units_directory',
    defaultText: '/run/fleet/units/',
    metavar: 'PATH',
    meaning: "where the agent writes fleet's unit files before linking them into systemd",
    reload: 'server',
    parse: (t) => parsePath(t, false),
    format: text,
  },
  systemdBus: {
    name: 'systemd_bus',
    defaultText: '',
    metavar: 'ADDRESS',
    meaning:
      "D-Bus address of systemd's bus, such as unix:path=/run/dbus/system_bus_socket; the system bus when empty",
    reload: 'server',
    parse: parseBusAddress,
    format: text,
  },
  apiSocket: {
    name: 'api_socket',
    defaultText: '/var/run/fleet.sock',
    metavar: 'PATH',
    meaning: 'unix socket of the HTTP API, where fleetctl connects by default; empty for none',
    reload: 'api',
    parse: (t) => parsePath(t, true),
    format: text,
  },
  apiSocketMode: {
    name: 'api_socket_mode',
    defaultText: '0660',
    metavar: 'MODE',
    meaning: 'file mode of the API socket, in octal: who may drive the cluster',
    reload: 'api',
    parse: parseFileMode,
    format: formatFileMode,
  },
  apiSocketGroup: {
    name: 'api_socket_group',
    defaultText: '',
    metavar: 'GROUP',
    meaning:
      'group (name or ID) that owns api_socket, so that a non-root ops group can drive the cluster; the group of fleetd when empty',
    reload: 'api',
    parse: parseGroup,
    format: text,
  },
  apiReadonlySocket: {
    name: 'api_readonly_socket',
    defaultText: '',
    metavar: 'PATH',
    meaning:
      'a second unix socket that serves only GET requests (any other method is 403): read-only fleetctl for whoever may open it; empty for none',
    reload: 'api',
    parse: (t) => parsePath(t, true),
    format: text,
  },
  apiReadonlySocketMode: {
    name: 'api_readonly_socket_mode',
    defaultText: '0660',
    metavar: 'MODE',
    meaning: 'file mode of api_readonly_socket, in octal',
    reload: 'api',
    parse: parseFileMode,
    format: formatFileMode,
  },
  apiReadonlySocketGroup: {
    name: 'api_readonly_socket_group',
    defaultText: '',
    metavar: 'GROUP',
    meaning: 'group (name or ID) that owns api_readonly_socket; the group of fleetd when empty',
    reload: 'api',
    parse: parseGroup,
    format: text,
  },
  apiTcp: {
    name: 'api_tcp',
    defaultText: '',
    metavar: 'HOST:PORT',
    meaning:
      'also serve the API on TCP; needs api_tls_cert, api_tls_key and api_tls_ca, or a loopback host with api_allow_plain_http; empty for none',
    reload: 'api',
    parse: parseHostPort,
    format: formatHostPort,
  },
  apiTlsCert: {
    name: 'api_tls_cert',
    defaultText: '',
    metavar: 'PATH',
    meaning: 'server certificate (PEM) of the TCP API',
    reload: 'api',
    parse: (t) => parsePath(t, true),
    format: text,
  },
  apiTlsKey: {
    name: 'api_tls_key',
    defaultText: '',
    metavar: 'PATH',
    meaning: 'private key (PEM) of api_tls_cert',
    reload: 'api',
    parse: (t) => parsePath(t, true),
    format: text,
  },
  apiTlsCa: {
    name: 'api_tls_ca',
    defaultText: '',
    metavar: 'PATH',
    meaning:
      'CA bundle (PEM) that signed the certificates TCP API clients must present (TLS always requires them)',
    reload: 'api',
    parse: (t) => parsePath(t, true),
    format: text,
  },
  apiAllowPlainHttp: {
    name: 'api_allow_plain_http',
    defaultText: 'false',
    metavar: 'BOOL',
    meaning:
      'allow api_tcp without TLS, only on a loopback host (127.0.0.1, ::1, localhost); WARNING: then every local user, ' +
      'and every container sharing the network namespace, has full control of the cluster (logged at start-up)',
    reload: 'api',
    parse: parseBoolean,
    format: yesNo,
  },
  apiTlsWriters: {
    name: 'api_tls_writers',
    defaultText: '',
    metavar: 'NAMES',
    meaning:
      'comma-separated common names (CN) of the TCP API client certificates that may change the cluster; ' +
      'other clients with a certificate the CA signed may only GET (403 otherwise). Empty: every such client may write',
    reload: 'api',
    parse: (t) => ok(parseList(t)),
    format: (v) => v.join(','),
  },
  tokenLimit: {
    name: 'token_limit',
    defaultText: '100',
    metavar: 'N',
    meaning: 'page size of API list responses (1 to 65535)',
    reload: 'api',
    parse: (t) => parseInteger(t, 1, 65535),
    format: String,
  },
  unitDropDir: {
    name: 'unit_drop_dir',
    defaultText: '/etc/fleet/units/',
    metavar: 'PATH',
    meaning:
      'folder whose unit files are submitted and started as if by fleetctl start (edit replaces, removal destroys); empty for none',
    reload: 'server',
    parse: (t) => parsePath(t, true),
    format: text,
  },
  metricsListen: {
    name: 'metrics_listen',
    defaultText: '',
    metavar: 'HOST:PORT',
    meaning:
      'also serve GET /metrics (Prometheus text format), and nothing else, on plain HTTP at this address; ' +
      'empty for none (the API serves /metrics anyway)',
    reload: 'api',
    parse: parseHostPort,
    format: formatHostPort,
  },
  eventHistory: {
    name: 'event_history',
    defaultText: '10000',
    metavar: 'N',
    meaning:
      'how many cluster events (fleetctl events) etcd keeps at most; the leader drops the oldest (100 to 1000000)',
    reload: 'server',
    parse: (t) => parseInteger(t, 100, 1_000_000),
    format: String,
  },
  eventMaxAgeMs: {
    name: 'event_max_age',
    defaultText: '24h',
    metavar: 'DURATION',
    meaning:
      'how long cluster events are kept (Go duration, 1m to 720h); they expire with etcd leases, up to a 24th longer',
    reload: 'server',
    parse: (t) => {
      const d = parseGoDuration(t);
      if (!d.ok) return d;
      if (d.value < 60_000 || d.value > 720 * 3_600_000) {
        return bad(`${JSON.stringify(t.trim())} is out of range: 1m to 720h`);
      }
      return ok(d.value);
    },
    format: formatGoDuration,
  },
};

/**
 * Options fleet had that fleet-ts accepts and ignores, with the warning to log. A config file
 * written for fleet keeps working.
 */
export const DEPRECATED_OPTIONS: Readonly<Record<string, string>> = {
  verify_units: 'is no longer supported - ignoring',
  authorized_keys_file: 'is no longer supported - ignoring',
  enable_grpc: 'is not supported (agents follow etcd watches) - ignoring',
  disable_watches: 'is not supported (watches are how agents and the engine learn of changes) - ignoring',
  systemd_user: 'is not supported (use systemd_bus for another bus) - ignoring',
};

/** The table as a list, in declaration order. */
export const OPTION_LIST: readonly AnyOptionSpec[] = (Object.keys(OPTIONS) as (keyof FleetdOptions)[]).map(
  (key) => {
    const spec = OPTIONS[key] as OptionSpec<unknown>;
    return {
      key,
      name: spec.name,
      defaultText: spec.defaultText,
      metavar: spec.metavar,
      meaning: spec.meaning,
      reload: spec.reload,
      boolean: spec.metavar === 'BOOL',
      secret: spec.secret === true,
      parse: (t: string) => spec.parse(t),
      format: (v: unknown) => spec.format(v),
    };
  },
);

/** Options by fleet.conf name. */
export const OPTIONS_BY_NAME: ReadonlyMap<string, AnyOptionSpec> = new Map(
  OPTION_LIST.map((o) => [o.name, o]),
);

/** The environment variable of an option: `FLEET_AGENT_TTL`. */
export function envName(option: string): string {
  return `FLEET_${option.toUpperCase()}`;
}

/** The flag of an option: `--agent-ttl`. */
export function flagName(option: string): string {
  return `--${option.replaceAll('_', '-')}`;
}

/** Every name a user might have meant, for "did you mean" hints. */
const KNOWN_NAMES = [...OPTIONS_BY_NAME.keys(), ...Object.keys(DEPRECATED_OPTIONS)];

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] ?? 0;
      row[j] = Math.min(above + 1, (row[j - 1] ?? 0) + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length] ?? 0;
}

/** The known option closest to `name` (snake case), if one is close enough to be a typo. */
export function suggestOption(name: string): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const known of KNOWN_NAMES) {
    const d = editDistance(name, known);
    if (d < bestDistance) {
      best = known;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 4)) ? best : undefined;
}

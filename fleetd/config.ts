import { parseCommandLine, type RunCommandLine } from './config-command-line.js';
import { parseConfigFile } from './config-file.js';
import { hint, notice, type ConfigNotice, type ConfigSource } from './config-notice.js';
import {
  DEPRECATED_OPTIONS,
  OPTION_LIST,
  OPTIONS_BY_NAME,
  envName,
  type AnyOptionSpec,
  type FleetdOptions,
} from './config-options.js';
import { isLoopbackHost } from './config-values.js';

/**
 * fleetd's configuration: built-in defaults < /etc/fleet/fleet.conf < `FLEET_*` environment
 * variables < command-line flags. `buildConfig` is a pure function of (argv, environment, file
 * text); config-loader.ts does the reading. Every problem names where the setting came from
 * (file and line, variable, flag), the option and why, and all problems are reported at once
 * (config-notice.ts); the command line is read by config-command-line.ts.
 */

/** The resolved configuration: every option's value and where it came from. */
export interface FleetdConfig extends FleetdOptions {
  /** Where each option's value came from, by fleet.conf name. */
  readonly sources: ReadonlyMap<string, ConfigSource>;
}

/** What `buildConfig` returns. */
export type ConfigResult =
  | { readonly ok: true; readonly config: FleetdConfig; readonly warnings: readonly ConfigNotice[] }
  | { readonly ok: false; readonly problems: readonly ConfigNotice[] };

/** The environment, as `process.env`. */
export type Environment = Readonly<Record<string, string | undefined>>;

/** A config file's path and text. */
export interface ConfigFileText {
  readonly path: string;
  readonly text: string;
}

/** One raw setting of one layer. */
interface Layered {
  readonly name: string;
  readonly value: string;
  readonly source: ConfigSource;
}

/** The file's settings, problems and duplicate warnings. */
function fileLayer(file: ConfigFileText, problems: ConfigNotice[], warnings: ConfigNotice[]): Layered[] {
  const parsed = parseConfigFile(file.text);
  for (const p of parsed.problems)
    problems.push(notice({ kind: 'file', path: file.path, line: p.line }, undefined, p.message));
  const lastLine = new Map<string, number>();
  const out: Layered[] = [];
  for (const s of parsed.settings) {
    const source: ConfigSource = { kind: 'file', path: file.path, line: s.line };
    const earlier = lastLine.get(s.name);
    if (earlier !== undefined) {
      warnings.push(notice(source, s.name, `also set on line ${earlier}; the last one wins`));
    }
    lastLine.set(s.name, s.line);
    if (!OPTIONS_BY_NAME.has(s.name) && !Object.hasOwn(DEPRECATED_OPTIONS, s.name)) {
      problems.push(notice(source, s.name, `unknown option${hint(s.name, (o) => o)}`));
      continue;
    }
    out.push({ name: s.name, value: s.value, source });
  }
  return out;
}

/**
 * `FLEET_<OPTION>` variables. As in fleet (`os.LookupEnv`), a variable that is set wins even
 * when empty. Any other `FLEET_*` variable is a problem: a typo must not go unnoticed.
 */
function envLayer(env: Environment, problems: ConfigNotice[]): Layered[] {
  const out: Layered[] = [];
  for (const variable of Object.keys(env).sort()) {
    const value = env[variable];
    if (!variable.startsWith('FLEET_') || value === undefined) continue;
    const name = variable.slice('FLEET_'.length).toLowerCase();
    const source: ConfigSource = { kind: 'env', variable };
    const known = OPTIONS_BY_NAME.has(name) || Object.hasOwn(DEPRECATED_OPTIONS, name);
    if (!known || envName(name) !== variable) {
      problems.push(notice(source, undefined, `not a fleetd option${hint(name, envName)}`));
      continue;
    }
    out.push({ name, value, source });
  }
  return out;
}

/** Checks that involve several options, on the final values. */
function crossCheck(config: FleetdConfig, problems: ConfigNotice[], warnings: ConfigNotice[]): void {
  const src = (option: string): ConfigSource | undefined => {
    const s = config.sources.get(option);
    return s === undefined || s.kind === 'default' ? undefined : s;
  };
  if ((config.etcdCertFile === '') !== (config.etcdKeyFile === '')) {
    const [set, missing] =
      config.etcdCertFile === '' ? ['etcd_keyfile', 'etcd_certfile'] : ['etcd_certfile', 'etcd_keyfile'];
    problems.push(
      notice(src(set), set, `needs ${missing} too (a client certificate and its key go together)`),
    );
  }
  if ((config.etcdUsername === '') !== (config.etcdPassword === '')) {
    const [set, missing] =
      config.etcdUsername === '' ? ['etcd_password', 'etcd_username'] : ['etcd_username', 'etcd_password'];
    problems.push(
      notice(src(set), set, `needs ${missing} too (etcd authenticates a user with its password)`),
    );
  }
  if (config.etcdUsername !== '' && config.etcdServers.some((u) => u.startsWith('http:'))) {
    warnings.push(
      notice(
        src('etcd_username'),
        'etcd_username',
        'etcd_servers uses http:// URLs: the etcd password and token cross the network in clear; use https://',
      ),
    );
  }
  const etcdTls = config.etcdCaFile !== '' || config.etcdCertFile !== '';
  if (etcdTls && config.etcdServers.some((u) => u.startsWith('http:'))) {
    const option = config.etcdCaFile !== '' ? 'etcd_cafile' : 'etcd_certfile';
    problems.push(
      notice(src(option), option, 'TLS files are set but etcd_servers uses http:// URLs; use https:// URLs'),
    );
  }
  // TLS on the TCP API always verifies client certificates (fleetd/api/tcp.ts): all three or none.
  const apiTlsFiles: readonly (readonly [string, string])[] = [
    ['api_tls_cert', config.apiTlsCert],
    ['api_tls_key', config.apiTlsKey],
    ['api_tls_ca', config.apiTlsCa],
  ];
  const apiTlsSet = apiTlsFiles.filter(([, path]) => path !== '').map(([option]) => option);
  if (apiTlsSet.length > 0 && apiTlsSet.length < 3) {
    const missing = apiTlsFiles.map(([option]) => option).filter((o) => !apiTlsSet.includes(o));
    const first = apiTlsSet[0] ?? 'api_tls_cert';
    problems.push(
      notice(
        src(first),
        first,
        `needs ${missing.join(' and ')} too: the TCP API serves TLS only with a certificate, its key and the CA of client certificates`,
      ),
    );
  }
  const tcp = config.apiTcp;
  const apiTls = apiTlsSet.length === 3;
  if (tcp !== undefined && !apiTls) {
    if (!isLoopbackHost(tcp.host)) {
      problems.push(
        notice(
          src('api_tcp'),
          'api_tcp',
          `${tcp.host} is not a loopback address: the API has no authentication of its own, so it is served there only with TLS and client certificates (api_tls_cert, api_tls_key, api_tls_ca)`,
        ),
      );
    } else if (!config.apiAllowPlainHttp) {
      problems.push(
        notice(
          src('api_tcp'),
          'api_tcp',
          'needs api_tls_cert, api_tls_key and api_tls_ca, or api_allow_plain_http=true to serve plain HTTP on this loopback address',
        ),
      );
    }
  }
  if (tcp === undefined) {
    for (const option of ['api_tls_cert', 'api_tls_key', 'api_tls_ca', 'api_allow_plain_http']) {
      const s = src(option);
      if (s !== undefined) warnings.push(notice(s, option, 'ignored: api_tcp is empty'));
    }
  }
  if (tcp === undefined && config.apiSocket === '') {
    warnings.push(
      notice(
        src('api_socket'),
        'api_socket',
        'empty and api_tcp is empty too: no API is served, fleetctl cannot reach this fleetd',
      ),
    );
  }
}

/**
 * Resolves the configuration from the layers: defaults, then the file's settings, then
 * `FLEET_*` variables, then flags (later wins). Every setting of every layer is checked, also
 * one that a later layer overrides. Pure.
 */
export function resolveConfig(input: {
  readonly commandLine: RunCommandLine;
  readonly env: Environment;
  readonly file?: ConfigFileText;
}): ConfigResult {
  const problems: ConfigNotice[] = [];
  const warnings: ConfigNotice[] = [];
  const layers: Layered[] = [
    ...(input.file === undefined ? [] : fileLayer(input.file, problems, warnings)),
    ...envLayer(input.env, problems),
    ...input.commandLine.settings.map((s): Layered => ({
      name: s.name,
      value: s.value,
      source: { kind: 'flag', flag: s.flag },
    })),
  ];

  const values = new Map<keyof FleetdOptions, unknown>();
  const sources = new Map<string, ConfigSource>();
  const apply = (option: AnyOptionSpec, text: string, source: ConfigSource): void => {
    const parsed = option.parse(text);
    if (!parsed.ok) {
      problems.push(notice(source, option.name, parsed.why));
      return;
    }
    values.set(option.key, parsed.value);
    sources.set(option.name, source);
  };
  for (const option of OPTION_LIST) apply(option, option.defaultText, { kind: 'default' });
  for (const setting of layers) {
    const option = OPTIONS_BY_NAME.get(setting.name);
    if (option !== undefined) apply(option, setting.value, setting.source);
    else warnings.push(notice(setting.source, setting.name, DEPRECATED_OPTIONS[setting.name] ?? 'ignored'));
  }
  if (problems.length > 0) return { ok: false, problems };

  // Every key was set from its default above, each with the type its parser returns.
  const config = { ...(Object.fromEntries(values) as unknown as FleetdOptions), sources };
  crossCheck(config, problems, warnings);
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, config, warnings };
}

/**
 * The whole pure path: the command line, the environment and the config file's text (when one is
 * read) to a configuration or every problem. A command line that does not ask for a run (help,
 * version, arguments) is a problem here; main.ts answers those before loading.
 */
export function buildConfig(input: {
  readonly argv: readonly string[];
  readonly env: Environment;
  readonly file?: ConfigFileText;
}): ConfigResult {
  const commandLine = parseCommandLine(input.argv);
  switch (commandLine.kind) {
    case 'run':
      return resolveConfig({
        commandLine,
        env: input.env,
        ...(input.file === undefined ? {} : { file: input.file }),
      });
    case 'invalid':
      return { ok: false, problems: commandLine.problems };
    case 'positional':
      return {
        ok: false,
        problems: [
          notice(undefined, undefined, `takes no arguments, got ${JSON.stringify(commandLine.args[0])}`),
        ],
      };
    case 'help':
    case 'version':
      return {
        ok: false,
        problems: [notice(undefined, undefined, `--${commandLine.kind} does not run fleetd`)],
      };
  }
}

/** One option whose value differs between two configurations. */
export interface ConfigChange {
  readonly option: string;
  readonly from: string;
  readonly to: string;
  readonly reload: AnyOptionSpec['reload'];
}

/** The options whose values differ, rendered for logs, in table order. */
export function diffConfig(before: FleetdOptions, after: FleetdOptions): ConfigChange[] {
  const changes: ConfigChange[] = [];
  for (const option of OPTION_LIST) {
    const from = option.format(before[option.key]);
    const to = option.format(after[option.key]);
    // A secret's rendering hides it: compare the values themselves, show only whether it is set.
    const changed = from !== to || (option.secret && before[option.key] !== after[option.key]);
    if (changed) changes.push({ option: option.name, from, to, reload: option.reload });
  }
  return changes;
}

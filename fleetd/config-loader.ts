import { readFile } from 'node:fs/promises';

import { describeError } from '../lib/errors.js';
import type { RunCommandLine } from './config-command-line.js';
import type { ConfigNotice, ConfigSource } from './config-notice.js';
import { resolveConfig, type Environment, type FleetdConfig } from './config.js';

/** Where fleetd looks for its config file when `--config` is not given (fleet's default). */
export const DEFAULT_CONFIG_PATH = '/etc/fleet/fleet.conf';

/** PEM contents named by the TLS options, read when the configuration is loaded. */
export interface ConfigMaterial {
  /** For etcd: undefined when no etcd TLS file is configured. */
  readonly etcdTls: { readonly ca?: string; readonly cert?: string; readonly key?: string } | undefined;
  /** For the TCP API: undefined without api_tls_cert/api_tls_key. */
  readonly apiTls: { readonly cert: string; readonly key: string; readonly ca: string } | undefined;
}

/** A loaded configuration: the options, the TLS material, and what to log about the file. */
export interface LoadedConfig {
  readonly ok: true;
  readonly config: FleetdConfig;
  readonly material: ConfigMaterial;
  readonly warnings: readonly ConfigNotice[];
  /** The config file read, if any. */
  readonly file: string | undefined;
  /** fleet's line about the file: `Using provided config file ...`, `No provided or default ...`. */
  readonly fileNote: string;
}

/** What `loadConfig` returns. */
export type LoadResult = LoadedConfig | { readonly ok: false; readonly problems: readonly ConfigNotice[] };

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
    ? err.code
    : undefined;
}

const problem = (
  source: ConfigSource | undefined,
  option: string | undefined,
  message: string,
): ConfigNotice => ({
  source,
  option,
  message,
});

/**
 * Reads the config file: the one of `--config` (missing or a directory is a problem, as in
 * fleet), or else the default path if it exists.
 */
async function readConfigFile(
  commandLine: RunCommandLine,
  defaultPath: string,
): Promise<{ path: string; text: string; note: string } | { note: string } | { problem: ConfigNotice }> {
  const explicit = commandLine.configPath;
  const path = explicit ?? defaultPath;
  const source: ConfigSource | undefined =
    explicit === undefined ? undefined : { kind: 'flag', flag: '--config' };
  try {
    const text = await readFile(path, 'utf8');
    const note =
      explicit === undefined ? `Using default config file ${path}` : `Using provided config file ${path}`;
    return { path, text, note };
  } catch (err) {
    const code = errorCode(err);
    if (code === 'EISDIR') {
      return { problem: problem(source, undefined, `${path} is a directory, not a file`) };
    }
    if (code === 'ENOENT' && explicit === undefined) {
      return { note: 'No provided or default config file found - proceeding without' };
    }
    return {
      problem: problem(source, undefined, `unable to use config file ${path}: ${describeError(err)}`),
    };
  }
}

/** Reads the PEM files the configuration names; every unreadable one is a problem. */
export async function readConfigMaterial(
  config: FleetdConfig,
): Promise<{ readonly material: ConfigMaterial } | { readonly problems: readonly ConfigNotice[] }> {
  const read = async (option: string, path: string): Promise<{ text?: string; problem?: ConfigNotice }> => {
    if (path === '') return {};
    const source = config.sources.get(option);
    const at = source === undefined || source.kind === 'default' ? undefined : source;
    try {
      const text = await readFile(path, 'utf8');
      if (!text.includes('-----BEGIN ')) {
        return { problem: problem(at, option, `${path} is not a PEM file (no -----BEGIN line)`) };
      }
      return { text };
    } catch (err) {
      return { problem: problem(at, option, `cannot read ${path}: ${describeError(err)}`) };
    }
  };
  const apiOn = config.apiTcp !== undefined;
  const results = await Promise.all([
    read('etcd_cafile', config.etcdCaFile),
    read('etcd_certfile', config.etcdCertFile),
    read('etcd_keyfile', config.etcdKeyFile),
    read('api_tls_cert', apiOn ? config.apiTlsCert : ''),
    read('api_tls_key', apiOn ? config.apiTlsKey : ''),
    read('api_tls_ca', apiOn ? config.apiTlsCa : ''),
  ]);
  const problems = results.flatMap((r) => (r.problem === undefined ? [] : [r.problem]));
  const [etcdCa, etcdCert, etcdKey, apiCert, apiKey, apiCa] = results.map((r) => r.text);
  if (problems.length > 0) return { problems };
  const etcdTls =
    etcdCa === undefined && etcdCert === undefined
      ? undefined
      : {
          ...(etcdCa === undefined ? {} : { ca: etcdCa }),
          ...(etcdCert === undefined ? {} : { cert: etcdCert }),
          ...(etcdKey === undefined ? {} : { key: etcdKey }),
        };
  const apiTls =
    apiCert === undefined || apiKey === undefined || apiCa === undefined
      ? undefined
      : { cert: apiCert, key: apiKey, ca: apiCa };
  return { material: { etcdTls, apiTls } };
}

/**
 * Loads the configuration for a run: reads the config file, resolves the layers (config.ts) and
 * reads the TLS files. Used at start and on every SIGHUP.
 */
export async function loadConfig(options: {
  readonly commandLine: RunCommandLine;
  readonly env: Environment;
  readonly defaultPath?: string;
}): Promise<LoadResult> {
  const file = await readConfigFile(options.commandLine, options.defaultPath ?? DEFAULT_CONFIG_PATH);
  if ('problem' in file) return { ok: false, problems: [file.problem] };
  const resolved = resolveConfig({
    commandLine: options.commandLine,
    env: options.env,
    ...('text' in file ? { file: { path: file.path, text: file.text } } : {}),
  });
  if (!resolved.ok) return resolved;
  const read = await readConfigMaterial(resolved.config);
  if ('problems' in read) return { ok: false, problems: read.problems };
  return {
    ok: true,
    config: resolved.config,
    material: read.material,
    warnings: resolved.warnings,
    file: 'path' in file ? file.path : undefined,
    fileNote: file.note,
  };
}

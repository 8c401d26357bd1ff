import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { FleetError } from '../../lib/errors.js';
import { MACHINE_TARGET } from '../lab/machine-root.js';

/**
 * fleetd installed in a lab machine the way an operator would: the shipped unit file
 * (fleetd/units/fleetd.service) in /etc/systemd/system, its configuration in /etc/fleet/fleet.conf,
 * started by systemd and started again on every boot.
 *
 * The API socket must be reachable from the host, and fleetd serves exactly one unix socket
 * (`api_socket`). The lab binds host paths read-only, so the socket cannot live in a bound host
 * directory; and the machine's /run is a tmpfs of nspawn's that the host does not see. So fleetd
 * serves on {@link MACHINE_API_SOCKET}, a directory of the machine's root on disk: the host
 * reaches the same socket at `<root>/var/lib/fleet-api/fleet.sock` (a unix socket is found by its
 * inode, whatever mount namespace the path is resolved in). Inside the machine a tmpfiles.d
 * line makes /run/fleet.sock (= /var/run/fleet.sock, fleetctl's default endpoint) a link to it on
 * every boot, so fleetctl in a machine needs no flags.
 */

/** The directory of the API socket inside a machine. */
export const MACHINE_API_DIR = '/var/lib/fleet-api';
/** fleetd's `api_socket` inside a machine. */
export const MACHINE_API_SOCKET = `${MACHINE_API_DIR}/fleet.sock`;
/** Where the repository's build is bound into every machine, as fleetd.service expects it. */
export const MACHINE_REPO_DIR = '/opt/fleet-ts';
/** The tmpfiles.d file that links /run/fleet.sock to the socket. */
const TMPFILES_CONF = '/etc/tmpfiles.d/fleet-ts-api.conf';

/** Run inside a machine once its files are in place: the link now, then fleetd. */
export const INSTALL_COMMAND = [
  'sh',
  '-c',
  `systemd-tmpfiles --create ${TMPFILES_CONF} && systemctl daemon-reload && systemctl start fleetd.service`,
];

/** What fleet.conf says in one machine. */
export interface FleetConfOptions {
  /** etcd client URLs as the machine reaches them (the bridge address). */
  readonly etcdServers: readonly string[];
  readonly prefix: string;
  /** A Go duration such as `3s`; fleetd's default (10s) when absent. */
  readonly agentTtl?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** Further `key=value` lines, appended last (so they win over the lines above). */
  readonly extraLines?: readonly string[];
}

/** The text of /etc/fleet/fleet.conf. Throws HARNESS_START_FAILED for metadata fleet.conf cannot say. */
export function fleetConf(options: FleetConfOptions): string {
  const lines = [
    '# Written by systemd-fixtures/cluster (FleetCluster).',
    `etcd_servers=${options.etcdServers.join(',')}`,
    `etcd_key_prefix=${options.prefix}`,
    `api_socket=${MACHINE_API_SOCKET}`,
  ];
  if (options.agentTtl !== undefined) lines.push(`agent_ttl=${options.agentTtl}`);
  const metadata = Object.entries(options.metadata ?? {});
  for (const [key, value] of metadata) {
    if (!/^[A-Za-z0-9_.-]+$/.test(key) || /[,="\s]/.test(value) || value === '') {
      throw new FleetError(
        'HARNESS_START_FAILED',
        `Machine metadata ${key}=${value} cannot be written to fleet.conf (keys: letters, digits, "_.-"; values: no commas, quotes, "=" or spaces)`,
      );
    }
  }
  if (metadata.length > 0) lines.push(`metadata="${metadata.map(([k, v]) => `${k}=${v}`).join(',')}"`);
  lines.push(...(options.extraLines ?? []));
  return `${lines.join('\n')}\n`;
}

/**
 * Writes fleetd's files into a machine's root (from the host): fleet.conf, the shipped
 * fleetd.service wanted by the lab machine's default target (so it also starts after a reboot),
 * the socket directory and the tmpfiles.d line. Run {@link INSTALL_COMMAND} inside afterwards.
 */
export function writeFleetdFiles(rootDir: string, conf: string, serviceFile: string): void {
  mkdirSync(join(rootDir, 'etc/fleet'), { recursive: true });
  writeFileSync(join(rootDir, 'etc/fleet/fleet.conf'), conf);
  const system = join(rootDir, 'etc/systemd/system');
  writeFileSync(join(system, 'fleetd.service'), readFileSync(serviceFile));
  const wants = join(system, `${MACHINE_TARGET}.wants`);
  mkdirSync(wants, { recursive: true });
  rmSync(join(wants, 'fleetd.service'), { force: true });
  symlinkSync('../fleetd.service', join(wants, 'fleetd.service'));
  mkdirSync(join(rootDir, MACHINE_API_DIR), { recursive: true, mode: 0o750 });
  mkdirSync(join(rootDir, 'etc/tmpfiles.d'), { recursive: true });
  writeFileSync(
    join(rootDir, TMPFILES_CONF),
    [
      "# fleetctl's default endpoint, unix:///var/run/fleet.sock, reaches the fleetd of this machine",
      `L+ /run/fleet.sock - - - - ${MACHINE_API_SOCKET}`,
      '',
    ].join('\n'),
  );
}

/** Where the host finds a machine's API socket. */
export function hostSocketPath(rootDir: string): string {
  return join(rootDir, MACHINE_API_SOCKET);
}

import { existsSync, mkdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { FleetError } from '../../lib/errors.js';
import { artifactNames, DEFAULT_OUT_DIR, packageVersion, REPO_DIR } from '../../packaging/artifacts.js';
import { Lab, type BindMount, type MachineRef } from '../lab/lab.js';
import { MACHINE_TARGET } from '../lab/machine-root.js';

/**
 * fleet-ts installed in a lab machine the way an operator installs it: its configuration written
 * to /etc/fleet/fleet.conf first (as configuration management would), then the Debian package
 * from `npm run package` installed with dpkg inside the machine. The package puts fleetd and
 * fleetctl in /usr/bin and fleetd.service in /lib/systemd/system, and its postinst enables and
 * starts fleetd (README.md, "Install on your machines"). Lab machines need a writable /usr for
 * that (LabOptions.writableUsr); the package's directory is bound read-only at
 * {@link MACHINE_PACKAGE_DIR}.
 *
 * The API socket must be reachable from the host, and fleetd serves exactly one unix socket
 * (`api_socket`). The machine's /run is a tmpfs of nspawn's that the host does not see, so
 * fleetd serves on {@link MACHINE_API_SOCKET}, a directory of the machine's root on disk: the host
 * reaches the same socket at `<root>/var/lib/fleet-api/fleet.sock` (a unix socket is found by its
 * inode, whatever mount namespace the path is resolved in). Inside the machine a tmpfiles.d
 * line makes /run/fleet.sock (= /var/run/fleet.sock, fleetctl's default endpoint) a link to it on
 * every boot, so fleetctl in a machine needs no flags.
 */

/** The directory of the API socket inside a machine. */
export const MACHINE_API_DIR = '/var/lib/fleet-api';
/** fleetd's `api_socket` inside a machine. */
export const MACHINE_API_SOCKET = `${MACHINE_API_DIR}/fleet.sock`;
/** Where the package directory (dist/package) is bound into every machine. */
export const MACHINE_PACKAGE_DIR = '/var/cache/fleet-ts-package';
/** The tmpfiles.d file that links /run/fleet.sock to the socket. */
const TMPFILES_CONF = '/etc/tmpfiles.d/fleet-ts-api.conf';

/** The package `npm run package` built, as the harness uses it. */
export interface BuiltPackage {
  /** The directory on the host (bound into machines at {@link MACHINE_PACKAGE_DIR}). */
  readonly dir: string;
  /** The .deb's file name in it. */
  readonly debName: string;
  /** The packaged executable on the host under the name fleetctl. */
  readonly fleetctl: string;
}

/**
 * The package in `dir` (default dist/package of the repository) named `debName`. Throws
 * HARNESS_MISSING_BINARY when it is missing or older than the build it was made from
 * (dist/fleetd/main.js), so that no test runs an old package by mistake.
 */
export function findPackage(
  repo: string = REPO_DIR,
  debName: string = artifactNames(packageVersion()).deb,
  dir: string = join(repo, 'dist/package'),
): BuiltPackage {
  const deb = join(dir, debName);
  const fleetctl = join(dir, 'fleetctl');
  const hint = 'run npm run package (npm test does it)';
  for (const path of [deb, fleetctl]) {
    if (!existsSync(path)) throw new FleetError('HARNESS_MISSING_BINARY', `${path} is missing: ${hint}`);
  }
  const build = join(repo, 'dist/fleetd/main.js');
  if (existsSync(build) && statSync(build).mtimeMs > statSync(deb).mtimeMs) {
    throw new FleetError('HARNESS_MISSING_BINARY', `${deb} is older than the build ${build}: ${hint}`);
  }
  return { dir, debName, fleetctl };
}

/** The read-only bind of the package directory into machines. */
export function packageBind(pkg: BuiltPackage): BindMount {
  return { host: pkg.dir, machine: MACHINE_PACKAGE_DIR };
}

/**
 * Installs (or upgrades to) the package in a machine: the command to run inside it once
 * fleet.conf is in place. dpkg keeps that fleet.conf (--force-confold: no question about the
 * conffile) and its postinst enables and starts (on an upgrade, restarts) fleetd.service.
 * /usr/sbin/policy-rc.d is removed first: lab machines share the host's /usr, and a host that
 * forbids service starts with one (container images ship one) would forbid them in the machine.
 */
export function installCommand(debPath: string, options: { apiSocketLink?: boolean } = {}): string[] {
  return [
    'sh',
    '-c',
    [
      'rm -f /usr/sbin/policy-rc.d',
      ...(options.apiSocketLink === true ? [`systemd-tmpfiles --create ${TMPFILES_CONF}`] : []),
      `DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold '${debPath}'`,
      'systemctl is-active --quiet fleetd.service',
    ].join(' && '),
  ];
}

/**
 * A lab whose machines can have the package installed ({@link installPackage}): a writable
 * /usr and the package directory (dist/package) bound in. Nothing is checked until a machine
 * installs it, so a spec can make its lab when mocha loads it.
 */
export function packagedLab(name: string, machines: number): Lab {
  return new Lab({
    name,
    machines,
    writableUsr: true,
    bindRo: [{ host: DEFAULT_OUT_DIR, machine: MACHINE_PACKAGE_DIR }],
  });
}

/**
 * Installs the package of `npm run package` in a machine of a {@link packagedLab} whose
 * /etc/fleet/fleet.conf is written: fleetd is then running from /usr/bin/fleetd under the
 * packaged unit. Throws HARNESS_MISSING_BINARY without a fresh package, HARNESS_START_FAILED when
 * dpkg or fleetd fails.
 */
export async function installPackage(lab: Lab, machine: MachineRef): Promise<void> {
  const pkg = findPackage();
  const r = await lab.exec(machine, installCommand(join(MACHINE_PACKAGE_DIR, pkg.debName)), {
    timeoutMs: 120_000,
  });
  if (r.code !== 0) {
    throw new FleetError(
      'HARNESS_START_FAILED',
      `Cannot install the package and start fleetd.service (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`,
    );
  }
}

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
    '# Written by systemd-fixtures/cluster (FleetCluster) before the package was installed.',
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
 * Writes what a machine needs before the package is installed (from the host): fleet.conf, the
 * socket directory and the tmpfiles.d line, and a link that makes the lab machine's default
 * target want fleetd.service (a real machine boots multi-user.target, which the package's
 * enablement uses; lab machines boot a smaller target), so fleetd also starts after a reboot.
 */
export function writeFleetdFiles(rootDir: string, conf: string): void {
  mkdirSync(join(rootDir, 'etc/fleet'), { recursive: true });
  writeFileSync(join(rootDir, 'etc/fleet/fleet.conf'), conf);
  const wants = join(rootDir, 'etc/systemd/system', `${MACHINE_TARGET}.wants`);
  mkdirSync(wants, { recursive: true });
  rmSync(join(wants, 'fleetd.service'), { force: true });
  symlinkSync('/lib/systemd/system/fleetd.service', join(wants, 'fleetd.service'));
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

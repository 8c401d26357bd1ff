import { randomUUID } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

/**
 * A machine's root directory: its own small /etc, mount points for the host's /usr (bound
 * read-only by nspawn) and for extra binds, and a persistent /var/log/journal. docs/lab.md explains the
 * choices: a real /etc with a machine-id so systemd does not treat the boot as a first boot, and a
 * default target that wants only basic.target and dbus.service so the machine is `running` in
 * about a second.
 */

/** The small target machines boot into; a unit linked into its `.wants/` starts on every boot. */
export const MACHINE_TARGET = 'fleet-lab-machine.target';

/** Options for {@link prepareMachineRoot}. */
export interface MachineRootOptions {
  readonly rootDir: string;
  readonly hostname: string;
  /** Lines for /etc/hosts besides localhost: the host and every machine of the lab. */
  readonly hosts: readonly { readonly ip: string; readonly name: string }[];
  /** Paths inside the machine that nspawn binds something onto. */
  readonly mountPoints: readonly string[];
  /**
   * Give the machine a dpkg database (for a writable /usr): the host's package list and file
   * lists (so dpkg knows what is installed, for dependencies and file ownership) and /etc/dpkg;
   * no maintainer scripts and no triggers of the host's packages.
   */
  readonly dpkgDatabase?: boolean;
}

/** Files and directories copied from the host's /etc when present. */
const COPIED_FROM_ETC = [
  'passwd',
  'group',
  'shadow',
  'gshadow',
  'nsswitch.conf',
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'login.defs',
  'dbus-1',
  'pam.d',
  'security',
  'ssl',
  'alternatives',
];

/** Units a stock Debian would start that a lab machine does without. */
const MASKED_UNITS = [
  'apt-daily.timer',
  'apt-daily-upgrade.timer',
  'dpkg-db-backup.timer',
  'e2scrub_all.timer',
  'fstrim.timer',
  'man-db.timer',
  'systemd-timesyncd.service',
];

/** The top-level links a merged-/usr system has (/bin -> usr/bin, ...), mirrored from the host. */
const MERGED_USR_LINKS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];

/**
 * Builds a fresh root at `rootDir` (which must not exist yet) and returns its new machine-id, kept
 * in the root's /etc/machine-id for the machine's life.
 */
export function prepareMachineRoot(options: MachineRootOptions): string {
  const { rootDir } = options;
  const machineId = randomUUID().replaceAll('-', '');
  for (const dir of [
    'usr',
    'etc',
    'var/log/journal',
    'var/lib',
    'var/cache',
    'var/tmp',
    'run',
    'proc',
    'sys',
  ]) {
    mkdirSync(join(rootDir, dir), { recursive: true });
  }
  for (const dir of ['dev', 'home', 'mnt', 'opt', 'srv']) mkdirSync(join(rootDir, dir));
  mkdirSync(join(rootDir, 'root'), { mode: 0o700 });
  mkdirSync(join(rootDir, 'tmp'));
  chmodSync(join(rootDir, 'tmp'), 0o1777);
  chmodSync(join(rootDir, 'var/tmp'), 0o1777);
  symlinkSync('../run', join(rootDir, 'var/run'));
  for (const name of MERGED_USR_LINKS) {
    const hostPath = `/${name}`;
    if (existsSync(hostPath) && lstatSync(hostPath).isSymbolicLink()) {
      symlinkSync(readlinkSync(hostPath), join(rootDir, name));
    }
  }
  for (const mountPoint of options.mountPoints) mkdirSync(join(rootDir, mountPoint), { recursive: true });

  const etc = join(rootDir, 'etc');
  for (const name of COPIED_FROM_ETC) {
    const hostPath = join('/etc', name);
    if (existsSync(hostPath)) {
      cpSync(hostPath, join(etc, name), {
        recursive: true,
        verbatimSymlinks: true,
        preserveTimestamps: true,
      });
    }
  }
  // nspawn rejects an os-release that is a symlink into /usr, so write a real file.
  writeFileSync(join(etc, 'os-release'), readFileSync('/usr/lib/os-release'));
  writeFileSync(join(etc, 'machine-id'), `${machineId}\n`);
  writeFileSync(join(etc, 'hostname'), `${options.hostname}\n`);
  writeFileSync(join(etc, 'hosts'), hostsFile(options.hostname, options.hosts));
  writeSystemdConfig(join(etc, 'systemd'));
  if (options.dpkgDatabase === true) writeDpkgDatabase(rootDir);
  return machineId;
}

const HOST_DPKG = '/var/lib/dpkg';

function writeDpkgDatabase(rootDir: string): void {
  const dpkg = join(rootDir, 'var/lib/dpkg');
  for (const dir of ['info', 'updates', 'triggers', 'alternatives', 'parts']) {
    mkdirSync(join(dpkg, dir), { recursive: true });
  }
  writeFileSync(join(dpkg, 'status'), readFileSync(join(HOST_DPKG, 'status')));
  writeFileSync(join(dpkg, 'available'), '');
  for (const file of readdirSync(join(HOST_DPKG, 'info')).filter((f) => f.endsWith('.list'))) {
    cpSync(join(HOST_DPKG, 'info', file), join(dpkg, 'info', file));
  }
  if (existsSync('/etc/dpkg')) {
    cpSync('/etc/dpkg', join(rootDir, 'etc/dpkg'), { recursive: true, verbatimSymlinks: true });
  }
}

/** The machine-id stored in a prepared root. */
export function readMachineId(rootDir: string): string {
  return readFileSync(join(rootDir, 'etc/machine-id'), 'utf8').trim();
}

function hostsFile(hostname: string, hosts: MachineRootOptions['hosts']): string {
  const lines = [
    '127.0.0.1\tlocalhost',
    `127.0.1.1\t${hostname}`,
    '::1\tlocalhost ip6-localhost ip6-loopback',
  ];
  for (const host of hosts) lines.push(`${host.ip}\t${host.name}`);
  return `${lines.join('\n')}\n`;
}

function writeSystemdConfig(dir: string): void {
  const system = join(dir, 'system');
  mkdirSync(join(system, `${MACHINE_TARGET}.wants`), { recursive: true });
  writeFileSync(
    join(system, MACHINE_TARGET),
    [
      '[Unit]',
      'Description=fleet-ts lab machine',
      'Requires=basic.target',
      'Wants=dbus.service',
      'After=basic.target dbus.service',
      'AllowIsolate=yes',
      '',
    ].join('\n'),
  );
  symlinkSync(MACHINE_TARGET, join(system, 'default.target'));
  for (const unit of MASKED_UNITS) symlinkSync('/dev/null', join(system, unit));
  mkdirSync(join(dir, 'journald.conf.d'));
  // Journals stay on disk under the root so a failed test can be read after the machine is gone.
  writeFileSync(
    join(dir, 'journald.conf.d', 'fleet-lab.conf'),
    '[Journal]\nStorage=persistent\nSystemMaxUse=64M\n',
  );
}

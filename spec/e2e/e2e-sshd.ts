/**
 * sshd in the lab machines, so that fleetctl's ssh path (status, journal and ssh on a machine that
 * is not the one fleetctl runs on) can be tested for real: Debian's OpenSSH server from the host's
 * /usr (bound read-only into every machine), one host key per machine and one client key made
 * here, an ssh-agent on the host holding that key (ssh reads keys from the agent named by
 * SSH_AUTH_SOCK, whatever HOME says), and a known_hosts file listing every machine's host key.
 *
 * The lab machines have no sshd of their own; when the host has none either (the package
 * openssh-server is not installed), {@link LabSsh.available} is false.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { FleetCluster } from '../../systemd-fixtures/cluster/fleet-cluster.js';
import { runCommand } from '../../systemd-fixtures/lab/run-command.js';
import { eventually } from '../../systemd-fixtures/eventually.js';

const SSHD = '/usr/sbin/sshd';
/** Inside each machine: host key, authorized keys and configuration. */
const MACHINE_SSH_DIR = '/etc/fleet-e2e-ssh';
/** The transient unit sshd runs as in each machine. */
const SSHD_UNIT = 'fleet-e2e-sshd.service';

const SSHD_CONFIG = [
  'Port 22',
  `HostKey ${MACHINE_SSH_DIR}/host_key`,
  `AuthorizedKeysFile ${MACHINE_SSH_DIR}/authorized_keys`,
  'PermitRootLogin prohibit-password',
  'PasswordAuthentication no',
  'KbdInteractiveAuthentication no',
  'UsePAM no',
  'PidFile none',
  '',
].join('\n');

async function run(argv: readonly string[], env?: Record<string, string>): Promise<string> {
  const r = await runCommand(argv, env === undefined ? {} : { env: { PATH: '/usr/bin:/bin', ...env } });
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** sshd running in every machine of a cluster, and what fleetctl on the host needs to use it. */
export class LabSsh {
  private constructor(
    private readonly cluster: FleetCluster,
    private readonly agent: ChildProcess,
    /** For fleetctl's environment: the agent holding the client key. */
    readonly env: Readonly<Record<string, string>>,
    /** For `--known-hosts-file`: every machine's host key at its address. */
    readonly knownHosts: string,
  ) {}

  /**
   * Whether sshd can run in the machines: the host has OpenSSH's server, and its privilege
   * separation user `sshd` (the machines' /etc/passwd is a copy of the host's).
   */
  static available(): boolean {
    return existsSync(SSHD) && /^sshd:/m.test(readFileSync('/etc/passwd', 'utf8'));
  }

  /** Starts sshd in every running machine and an ssh-agent on the host; files go under `dir`. */
  static async start(cluster: FleetCluster, dir: string): Promise<LabSsh> {
    await mkdir(dir, { recursive: true });
    const clientKey = join(dir, 'id_ed25519');
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'fleet-e2e', '-f', clientKey]);
    const authorized = await readFile(`${clientKey}.pub`, 'utf8');
    const known: string[] = [];
    for (const m of cluster.machines) {
      const sshDir = join(m.rootDir, MACHINE_SSH_DIR);
      await mkdir(sshDir, { recursive: true });
      const hostKey = join(sshDir, 'host_key');
      if (!existsSync(hostKey)) {
        await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', m.name, '-f', hostKey]);
      }
      await writeFile(join(sshDir, 'authorized_keys'), authorized);
      await writeFile(join(sshDir, 'sshd_config'), SSHD_CONFIG);
      const [type = '', key = ''] = (await readFile(`${hostKey}.pub`, 'utf8')).split(' ');
      known.push(`${m.ip} ${type} ${key}`);
      const r = await cluster.exec(m, [
        'systemd-run',
        `--unit=${SSHD_UNIT}`,
        '-p',
        'RuntimeDirectory=sshd',
        SSHD,
        '-D',
        '-e',
        '-f',
        `${MACHINE_SSH_DIR}/sshd_config`,
      ]);
      if (r.code !== 0) throw new Error(`sshd in ${m.name}: ${r.stderr}`);
    }
    const knownHosts = join(dir, 'known_hosts');
    await writeFile(knownHosts, `${known.join('\n')}\n`);

    const socket = join(dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    const lab = new LabSsh(cluster, agent, { SSH_AUTH_SOCK: socket }, knownHosts);
    try {
      await eventually(
        () => {
          if (!existsSync(socket)) throw new Error(`no ${socket} yet`);
        },
        { timeoutMs: 5_000, description: 'ssh-agent to listen' },
      );
      await run(['ssh-add', '-q', clientKey], { SSH_AUTH_SOCK: socket });
      // sshd listens once its unit runs; probe each machine from the host.
      for (const m of cluster.machines) {
        await eventually(
          async () =>
            run(
              [
                'ssh',
                '-o',
                'BatchMode=yes',
                '-o',
                `UserKnownHostsFile=${knownHosts}`,
                '-o',
                'StrictHostKeyChecking=yes',
                '-l',
                'root',
                m.ip,
                'true',
              ],
              { SSH_AUTH_SOCK: socket },
            ),
          { timeoutMs: 10_000, intervalMs: 200, description: `sshd in ${m.name} to let us in` },
        );
      }
    } catch (err) {
      await lab.stop();
      throw err;
    }
    return lab;
  }

  /** Stops sshd in every running machine and the agent. */
  async stop(): Promise<void> {
    if (this.agent.exitCode === null && this.agent.signalCode === null) this.agent.kill('SIGTERM');
    await Promise.allSettled(
      this.cluster.machines
        .filter((m) => m.running)
        .map((m) => this.cluster.exec(m, ['systemctl', 'stop', SSHD_UNIT])),
    );
  }
}

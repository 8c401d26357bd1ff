import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

import { FleetError, describeError, isFleetError } from '../../lib/errors.js';
import { EtcdRegistry } from '../../registry/etcd-registry.js';
import { assertNoOtherOwner } from '../lab/lab-owner.js';
import { isAlive } from '../lab/lab-processes.js';
import { defaultStateDir as defaultLabStateDir } from '../lab/lab-state.js';
import { Lab, type ExecOptions, type LabMachine, type MachineRef } from '../lab/lab.js';
import { pollUntil } from '../lab/poll.js';
import { repoRoot } from '../repo-root.js';
import { runCommand, STANDARD_PATH, type CommandResult } from '../lab/run-command.js';
import { apiRequest, type ApiReply } from './api-request.js';
import { ClusterEtcd, planEtcd } from './cluster-etcd.js';
import {
  defaultClusterStateDir,
  readClusterState,
  writeClusterState,
  clusterStateFile,
  type ClusterState,
} from './cluster-state.js';
import { artifactNames, packageVersion } from '../../packaging/artifacts.js';
import {
  findPackage,
  fleetConf,
  hostSocketPath,
  installCommand,
  MACHINE_PACKAGE_DIR,
  packageBind,
  writeFleetdFiles,
  type BuiltPackage,
} from './fleetd-install.js';

export type { CommandResult } from '../lab/run-command.js';
export type { MachineRef } from '../lab/lab.js';
export type { ApiReply } from './api-request.js';

/** How to build a fleet cluster. */
export interface FleetClusterOptions {
  /** Cluster (and lab) name: 1-31 of a-z, 0-9 and "-". Machines are `<name>-m1` ... */
  readonly name: string;
  /** Number of machines, 1-200. */
  readonly machines: number;
  /**
   * fleet.conf `metadata` per machine: an array indexed from machine 1 (`[m1, m2, ...]`, missing
   * entries mean none) or a function of the machine's index (from 1). Default: none.
   */
  readonly metadata?:
    | readonly (Readonly<Record<string, string>> | undefined)[]
    | ((index: number) => Readonly<Record<string, string>> | undefined);
  /** fleet.conf `agent_ttl`, a Go duration such as `3s`; fleetd's default (10s) when absent. */
  readonly agentTtl?: string;
  /** One etcd member, or three forming one cluster (for fault tests). Default 1. */
  readonly etcdMembers?: 1 | 3;
  /** More fleet.conf lines (`engine_reconcile_interval=1`), written last so they win. */
  readonly fleetdConfig?: readonly string[];
  /** The etcd key prefix; default `/fleet/`, fleetd's own default. */
  readonly prefix?: string;
  /** Where etcd's data and logs and the socket links live; default /var/lib/fleet-ts-cluster/NAME. */
  readonly stateDir?: string;
  /**
   * Leave etcd running when this process exits without {@link FleetCluster.destroy} (the quick
   * start's `up`). Default false: a test process that dies takes its etcd with it, and the next
   * start of the same name removes the machines it left.
   */
  readonly keepEtcdOnExit?: boolean;
  /** How long booting, etcd and fleetd on every machine may take together; default 90 s. */
  readonly startTimeoutMs?: number;
}

/** One machine of the cluster, as of the moment it was read. */
export interface ClusterMachine extends LabMachine {
  /** `m1`, `m2`, ...: what the cluster's methods and the quick start's CLI accept. */
  readonly shortName: string;
  /** The host path of its fleetd's API socket (a link into the machine's root). */
  readonly socketPath: string;
  /** `unix://<socketPath>`: fleetctl's `--endpoint` from the host. */
  readonly endpoint: string;
  /** True while its systemd runs (false after {@link FleetCluster.killMachine}). */
  readonly running: boolean;
}

/** Options for {@link FleetCluster.fleetctl}. */
export interface FleetctlOptions {
  /** Written to fleetctl's stdin. */
  readonly input?: string;
  /** Default 60 s; past it fleetctl is killed and TIMEOUT thrown. */
  readonly timeoutMs?: number;
  /** Extra environment (`FLEETCTL_*`); fleetctl gets only PATH and HOME besides. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Options for {@link FleetCluster.destroy}. */
export interface ClusterDestroyOptions {
  /** Keep machine roots with their journals, and etcd's data and log, for a post-mortem. */
  readonly keepJournals?: boolean;
}

/** Options for {@link FleetCluster.waitUntilReady}. */
export interface ReadyOptions {
  /** Default 60 s. Throws TIMEOUT, naming what was still missing, past it. */
  readonly timeoutMs?: number;
}

const DEFAULT_PREFIX = '/fleet/';
const DEFAULT_START_TIMEOUT_MS = 90_000;

/**
 * A fleet-ts cluster on this host for end-to-end tests, benchmarks and the quick start: real etcd
 * (one member or three) on the host, a lab of N systemd-nspawn machines (systemd-fixtures/lab),
 * and in each machine the Debian package of `npm run package` installed with dpkg: fleetd runs
 * from /usr/bin/fleetd under the packaged fleetd.service, configured by /etc/fleet/fleet.conf,
 * and fleetctl is on PATH.
 *
 * Each machine's API socket is reachable from the host ({@link ClusterMachine.socketPath}), so
 * the packaged fleetctl runs on the host against any machine ({@link fleetctl}); inside a
 * machine, `fleetctl` with its default endpoint /var/run/fleet.sock works too (see
 * fleetd-install.ts).
 *
 * Faults: {@link killMachine} / {@link bootMachine} (power cut, same machine-id after boot),
 * {@link cutMachine} / {@link healMachine} (cable), {@link stopEtcd} / {@link startEtcd} (all
 * members or one). Everything is recorded on disk, so another process can take the cluster over
 * with {@link open} and tear it down with {@link destroy}, and a start of the same name cleans up
 * whatever a crashed run left behind.
 */
export class FleetCluster {
  /** The cluster's name, also its lab's. */
  readonly name: string;
  /** The cluster's state dir (etcd data and logs, socket links, cluster.json). */
  readonly stateDir: string;
  /** The lab underneath, for what the cluster does not wrap. */
  readonly lab: Lab;
  private readonly state: ClusterState;
  private readonly etcd: ClusterEtcd;
  private readonly registries = new Set<EtcdRegistry>();
  private probeRegistry: EtcdRegistry | undefined;
  private readonly killEtcdOnExit: (() => void) | undefined;
  private destroyed = false;

  private constructor(lab: Lab, stateDir: string, state: ClusterState, keepEtcdOnExit: boolean) {
    this.name = state.name;
    this.lab = lab;
    this.stateDir = stateDir;
    this.state = state;
    this.etcd = new ClusterEtcd(state.etcd, state.hostIp, () => {
      writeClusterState(this.stateDir, this.state);
    });
    if (!keepEtcdOnExit) {
      this.killEtcdOnExit = (): void => {
        this.etcd.killAllSync();
      };
      process.on('exit', this.killEtcdOnExit);
    }
  }

  /**
   * Boots a cluster: removes what an earlier run of the same name left behind, boots the lab,
   * starts etcd on the host bridge, installs and starts fleetd.service in every machine, and
   * resolves when every machine is listed in etcd, one engine leads and every API socket answers.
   * On failure everything is torn down (journals and etcd's log kept) and the error thrown:
   * HARNESS_START_FAILED, HARNESS_MISSING_BINARY or TIMEOUT. Throws HARNESS_START_FAILED at once
   * while another live process owns a cluster of that name.
   */
  static async start(options: FleetClusterOptions): Promise<FleetCluster> {
    const stateDir = options.stateDir ?? defaultClusterStateDir(options.name);
    // Typed 1 | 3, but a JavaScript caller may pass anything.
    const etcdMembers: number = options.etcdMembers ?? 1;
    if (etcdMembers !== 1 && etcdMembers !== 3) {
      throw new FleetError('HARNESS_START_FAILED', `etcdMembers is 1 or 3, not ${String(etcdMembers)}`);
    }
    const deadline = Date.now() + (options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
    const pkg = findPackage(repoRoot(), artifactNames(packageVersion()).deb);
    assertNoOtherOwner(options.name, 'start');
    await FleetCluster.removeLeftovers(options.name, stateDir);

    const lab = new Lab({
      name: options.name,
      machines: options.machines,
      writableUsr: true,
      bindRo: [packageBind(pkg)],
      bootTimeoutMs: Math.max(1_000, deadline - Date.now()),
    });
    await lab.start();
    const state: ClusterState = {
      version: 1,
      name: options.name,
      prefix: options.prefix ?? DEFAULT_PREFIX,
      hostIp: lab.hostIp,
      labStateDir: lab.stateDir,
      apiDir: join(stateDir, 'api'),
      etcd: await planEtcd(etcdMembers, stateDir),
    };
    const cluster = new FleetCluster(lab, stateDir, state, options.keepEtcdOnExit === true);
    writeClusterState(stateDir, state);
    try {
      await cluster.startEtcdFirstTime(etcdMembers, stateDir, deadline);
      await cluster.installFleetd(options, pkg);
      await cluster.waitUntilReady({ timeoutMs: Math.max(1_000, deadline - Date.now()) });
    } catch (err) {
      await cluster.destroy({ keepJournals: true });
      throw err;
    }
    return cluster;
  }

  /**
   * Takes over a running cluster (started by this or another process) from its state files.
   * Throws HARNESS_COMMAND_FAILED when there is no such cluster. Its etcd keeps running when this
   * process exits.
   */
  static open(name: string, stateDir: string = defaultClusterStateDir(name)): FleetCluster {
    const state = readClusterState(stateDir);
    if (state === undefined) {
      throw new FleetError(
        'HARNESS_COMMAND_FAILED',
        `Cluster ${name} is not up (no ${clusterStateFile(stateDir)})`,
      );
    }
    return new FleetCluster(Lab.open(name, state.labStateDir), stateDir, state, true);
  }

  /**
   * Removes what cluster `name` left on the host, without an orderly shutdown: its etcd members
   * (only pids recorded in its state whose process is still that etcd), its lab, its state dir.
   * Throws HARNESS_START_FAILED while another live process owns the cluster.
   */
  static async removeLeftovers(name: string, stateDir: string = defaultClusterStateDir(name)): Promise<void> {
    assertNoOtherOwner(name, 'clean up');
    const state = readClusterState(stateDir);
    if (state !== undefined) {
      const etcd = new ClusterEtcd(state.etcd, state.hostIp, () => undefined);
      await etcd.stopAll();
    }
    await Lab.removeLeftovers(name, state?.labStateDir ?? defaultLabStateDir(name));
    rmSync(stateDir, { recursive: true, force: true });
  }

  /** The machines, in index order, as they are now. */
  get machines(): ClusterMachine[] {
    return this.lab.machines.map((m) => this.toClusterMachine(m));
  }

  /** One machine (`m1`, `<name>-m1`, 1 or a machine object); throws HARNESS_COMMAND_FAILED if unknown. */
  machine(ref: MachineRef): ClusterMachine {
    return this.toClusterMachine(this.lab.machine(ref));
  }

  /** The machine whose machine ID is `id`, or `undefined`. */
  machineById(id: string): ClusterMachine | undefined {
    return this.machines.find((m) => m.machineId === id);
  }

  /** The etcd key prefix fleetd uses here. */
  get prefix(): string {
    return this.state.prefix;
  }

  /** etcd's client URLs on loopback: for clients on the host. */
  get etcdEndpoints(): string[] {
    return this.etcd.endpoints;
  }

  /** etcd's client URLs on the lab bridge: what fleetd in the machines uses. */
  get machineEtcdEndpoints(): string[] {
    return this.etcd.machineEndpoints;
  }

  /** The etcd members: name, loopback client URL, log file, and whether each runs. */
  get etcdMembers(): { name: string; clientUrl: string; logFile: string; running: boolean }[] {
    return Array.from({ length: this.etcd.size }, (_, i) => this.etcd.member(i));
  }

  /** fleetctl's `--endpoint` for a machine's fleetd, from the host. */
  endpoint(ref: MachineRef): string {
    return this.machine(ref).endpoint;
  }

  /**
   * Runs the packaged fleetctl (the executable of `npm run package`, dist/package/fleetctl) on
   * the host against the machine's API socket (`--endpoint unix://...` before `args`), in this
   * process's working directory. A non-zero exit is a result, not an error; throws TIMEOUT past
   * `timeoutMs`.
   */
  fleetctl(ref: MachineRef, args: readonly string[], options: FleetctlOptions = {}): Promise<CommandResult> {
    const fleetctl = join(repoRoot(), 'dist/package/fleetctl');
    return runCommand([fleetctl, '--endpoint', this.endpoint(ref), ...args], {
      ...(options.input === undefined ? {} : { input: options.input }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      env: { PATH: STANDARD_PATH, HOME: process.env.HOME ?? '/root', ...options.env },
    });
  }

  /** One plain HTTP request to the machine's fleetd API over its socket (no fleetctl involved). */
  api(ref: MachineRef, method: string, path: string): Promise<ApiReply> {
    return apiRequest(this.machine(ref).socketPath, method, path);
  }

  /** Runs `argv` inside the machine as root; see {@link Lab.exec}. */
  exec(ref: MachineRef, argv: readonly string[], options: ExecOptions = {}): Promise<CommandResult> {
    return this.lab.exec(ref, argv, options);
  }

  /**
   * A new registry client on the cluster's etcd and prefix (loopback endpoints). The cluster
   * closes it in {@link destroy}; closing it earlier is fine.
   */
  registry(options: { readonly requestTimeoutMs?: number } = {}): EtcdRegistry {
    const registry = new EtcdRegistry({
      endpoints: this.etcd.endpoints,
      prefix: this.state.prefix,
      ...options,
    });
    this.registries.add(registry);
    return registry;
  }

  /** The machine whose engine leads now, or `undefined` when none does (or etcd cannot say). */
  async leader(): Promise<ClusterMachine | undefined> {
    const id = await this.probe().currentLeader();
    return id === undefined ? undefined : this.machineById(id);
  }

  /**
   * Waits until every running machine (not killed, not cut) is listed in etcd, one of them leads
   * and each answers on its API socket. Throws TIMEOUT naming what was missing last.
   */
  async waitUntilReady(options: ReadyOptions = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    let missing = 'nothing checked yet';
    const ready = await pollUntil(
      async () => {
        missing = await this.notReady();
        return missing === '' ? true : undefined;
      },
      { timeoutMs, intervalMs: 100 },
    );
    if (ready === undefined) {
      throw new FleetError(
        'TIMEOUT',
        `Cluster ${this.name} is not ready after ${timeoutMs} ms: ${missing}. fleetd's log: ${this.journalHint()}`,
      );
    }
  }

  /**
   * Kills the machine like a power cut (link down, SIGKILL of its PID 1). Its presence and unit
   * states vanish from etcd when its agent_ttl runs out.
   */
  killMachine(ref: MachineRef): Promise<void> {
    return this.lab.kill(ref);
  }

  /**
   * Boots a killed machine on the same root (same machine-id); fleetd starts with it. Resolves when
   * its systemd runs; {@link waitUntilReady} waits for its fleetd to be listed again.
   */
  bootMachine(ref: MachineRef): Promise<void> {
    return this.lab.boot(ref);
  }

  /** Takes the machine's link down; it keeps running but reaches neither etcd nor the others. */
  cutMachine(ref: MachineRef): Promise<void> {
    return this.lab.cut(ref);
  }

  /** Brings the machine's link back up. */
  healMachine(ref: MachineRef): Promise<void> {
    return this.lab.heal(ref);
  }

  /**
   * Stops one etcd member (index from 0) or, without `member`, all of them: SIGTERM, SIGKILL after
   * `graceMs` (default 5 s). Data is kept for {@link startEtcd}. Idempotent.
   */
  async stopEtcd(member?: number, graceMs?: number): Promise<void> {
    await this.etcd.stop(this.memberIndexes(member), graceMs);
  }

  /**
   * Starts one stopped etcd member, or all stopped members, with their data, and waits until they
   * report healthy (a member of three needs a quorum for that). Throws HARNESS_START_FAILED.
   */
  async startEtcd(member?: number, timeoutMs = 20_000): Promise<void> {
    await this.etcd.start(this.memberIndexes(member), timeoutMs);
  }

  /**
   * The machine's journal, read on the host from its root (so also after it was killed), as
   * `journalctl -o short-precise`; only `unit`'s lines when given.
   */
  async journal(ref: MachineRef, unit?: string): Promise<string> {
    const m = this.machine(ref);
    const result = await runCommand([
      'journalctl',
      '-D',
      m.journalDir,
      '--no-pager',
      '-q',
      '-o',
      'short-precise',
      ...(unit === undefined ? [] : ['-u', unit]),
    ]);
    return result.stdout;
  }

  /**
   * Closes this object's registry clients and leaves the cluster running (the quick start's `up`
   * before it returns). The cluster can still be destroyed, by this object or through {@link open}.
   */
  async close(): Promise<void> {
    const registries = [...this.registries];
    this.registries.clear();
    this.probeRegistry = undefined;
    await Promise.all(registries.map((r) => r.close()));
  }

  /**
   * Tears everything down: registry clients, machines (orderly, so fleetd still reaches etcd while
   * it stops), etcd, the state dir. Each step runs even when an earlier one failed; the first
   * failure is thrown at the end. With `keepJournals` the machine roots (with their journals) and
   * etcd's data and log stay on disk. Idempotent.
   */
  async destroy(options: ClusterDestroyOptions = {}): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const keep = options.keepJournals === true;
    const steps: (() => Promise<unknown>)[] = [
      () => Promise.all([...this.registries].map((r) => r.close())),
      () => this.lab.destroy({ keepJournals: keep }),
      () => this.etcd.stopAll(),
      () => {
        if (keep) rmSync(clusterStateFile(this.stateDir), { force: true });
        else rmSync(this.stateDir, { recursive: true, force: true });
        return Promise.resolve();
      },
    ];
    let failure: unknown;
    for (const step of steps) {
      try {
        await step();
      } catch (err) {
        failure ??= err;
      }
    }
    this.registries.clear();
    if (this.killEtcdOnExit !== undefined) process.off('exit', this.killEtcdOnExit);
    if (failure !== undefined) {
      throw failure instanceof Error ? failure : new FleetError('INTERNAL', describeError(failure));
    }
  }

  /** Starts the planned members; new ports once if one was taken between planning and binding. */
  private async startEtcdFirstTime(count: number, stateDir: string, deadline: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.etcd.startAll(Math.max(1_000, deadline - Date.now()));
        return;
      } catch (err) {
        if (!(isFleetError(err, 'HARNESS_START_FAILED') && err.retryable) || attempt >= 3) throw err;
        await this.etcd.stopAll();
        rmSync(join(stateDir, 'etcd'), { recursive: true, force: true });
        const plan = await planEtcd(count, stateDir);
        this.state.etcd.members.splice(0, this.state.etcd.members.length, ...plan.members);
        Object.assign(this.state.etcd, { token: plan.token, initialCluster: plan.initialCluster });
        writeClusterState(stateDir, this.state);
      }
    }
  }

  /**
   * Writes fleet.conf into every machine, links the sockets for the host, and installs the
   * package in every machine (which starts fleetd).
   */
  private async installFleetd(options: FleetClusterOptions, pkg: BuiltPackage): Promise<void> {
    mkdirSync(this.state.apiDir, { recursive: true });
    for (const m of this.lab.machines) {
      const metadata =
        typeof options.metadata === 'function' ? options.metadata(m.index) : options.metadata?.[m.index - 1];
      const conf = fleetConf({
        etcdServers: this.etcd.machineEndpoints,
        prefix: this.state.prefix,
        ...(options.agentTtl === undefined ? {} : { agentTtl: options.agentTtl }),
        ...(metadata === undefined ? {} : { metadata }),
        ...(options.fleetdConfig === undefined ? {} : { extraLines: options.fleetdConfig }),
      });
      writeFleetdFiles(m.rootDir, conf);
      const link = this.socketLink(m);
      rmSync(link, { force: true });
      symlinkSync(hostSocketPath(m.rootDir), link);
    }
    await Promise.all(
      this.lab.machines.map(async (m) => {
        const r = await this.lab.exec(
          m.index,
          installCommand(join(MACHINE_PACKAGE_DIR, pkg.debName), { apiSocketLink: true }),
          {
            timeoutMs: 120_000,
          },
        );
        if (r.code !== 0) {
          throw new FleetError(
            'HARNESS_START_FAILED',
            `Cannot install the package and start fleetd.service in ${m.name} (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`,
          );
        }
      }),
    );
  }

  /** What is still missing before the cluster is ready, or '' when nothing is. */
  private async notReady(): Promise<string> {
    const up = this.machines.filter((m) => m.running && !m.cut);
    let listed: Set<string>;
    let leader: string | undefined;
    try {
      listed = new Set((await this.probe().listMachines()).map((m) => m.id));
      leader = await this.probe().currentLeader();
    } catch (err) {
      return `etcd does not answer (${describeError(err)})`;
    }
    const unlisted = up.filter((m) => !listed.has(m.machineId)).map((m) => m.shortName);
    if (unlisted.length > 0) return `${unlisted.join(', ')} not listed in etcd`;
    if (leader === undefined || !up.some((m) => m.machineId === leader)) {
      return `no running machine's engine leads (leader: ${leader ?? 'none'})`;
    }
    for (const m of up) {
      try {
        const reply = await apiRequest(m.socketPath, 'GET', '/fleet/v1/machines', 2_000);
        if (reply.status !== 200) return `the API of ${m.shortName} answers ${reply.status}`;
      } catch (err) {
        return `the API of ${m.shortName} does not answer (${describeError(err)})`;
      }
    }
    return '';
  }

  /** The cluster's own registry for its checks, made on first use. */
  private probe(): EtcdRegistry {
    this.probeRegistry ??= this.registry();
    return this.probeRegistry;
  }

  private memberIndexes(member: number | undefined): number[] {
    return member === undefined ? Array.from({ length: this.etcd.size }, (_, i) => i) : [member];
  }

  private socketLink(m: LabMachine): string {
    return join(this.state.apiDir, `m${m.index}.sock`);
  }

  private journalHint(): string {
    const m = this.lab.machines[0];
    return m === undefined ? '(no machines)' : `journalctl -D ${m.journalDir} -u fleetd`;
  }

  private toClusterMachine(m: LabMachine): ClusterMachine {
    const socketPath = this.socketLink(m);
    return {
      ...m,
      shortName: `m${m.index}`,
      socketPath,
      endpoint: `unix://${socketPath}`,
      running: m.pid1 !== undefined && isAlive(m.pid1),
    };
  }
}

import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { FleetError } from '../../lib/errors.js';
import { createMachineCgroups, machineCgroupDirs } from './lab-cgroups.js';
import {
  findLabLeftovers,
  removeLabLeftovers,
  removeMachineLeftovers,
  type LabLeftovers,
} from './lab-leftovers.js';
import { defaultSubnetIndex, labNaming, subnetAddresses, type LabNaming } from './lab-naming.js';
import { assertNoOtherOwner, claimOwnership, otherLiveOwner, releaseOwnership } from './lab-owner.js';
import { chooseSubnetIndex, createBridge, createMachineNetwork, setLinkUp } from './lab-network.js';
import {
  INIT_COMM,
  isAlive,
  NSPAWN_COMM,
  readProcess,
  signalIfComm,
  waitUntilGone,
} from './lab-processes.js';
import {
  defaultStateDir,
  readLabState,
  writeLabState,
  type LabState,
  type MachineState,
} from './lab-state.js';
import { prepareMachineRoot } from './machine-root.js';
import { launchNspawn, waitForBoot, type BindMount, type NspawnBootOptions } from './nspawn-boot.js';
import { runCommand, STANDARD_PATH, type CommandResult } from './run-command.js';

/** A machine's /usr overlay changes, beside its root (LabOptions.writableUsr). */
const USR_UPPER_DIR = 'usr-upper';

export type { BindMount } from './nspawn-boot.js';
export type { CommandResult } from './run-command.js';
export type { LabLeftovers } from './lab-leftovers.js';

/** How to build a lab. */
export interface LabOptions {
  /** Lab name: 1-31 of a-z, 0-9 and "-". Labs with different names run side by side. */
  readonly name: string;
  /** Number of machines, 1-200. */
  readonly machines: number;
  /**
   * Third octet of the lab's subnet 10.250.X.0/24. Default: derived from the name, moved on to the
   * next free subnet when an interface on the host already uses it.
   */
  readonly subnetIndex?: number;
  /** Host paths bound read-only into every machine, e.g. a build dir at /opt/fleet-ts. */
  readonly bindRo?: readonly BindMount[];
  /**
   * Give every machine a writable /usr: the host's /usr under an overlay whose changes stay in
   * the machine's directory (`usr-upper/`, kept across kill and boot), and a dpkg database that
   * knows the host's packages, so that `dpkg -i` installs a package in the machine as on a real
   * one. Default false: the host's /usr bound read-only.
   */
  readonly writableUsr?: boolean;
  /** Where roots, console logs and the state file live; default /var/lib/fleet-ts-lab/NAME. */
  readonly stateDir?: string;
  /** How long one machine may take to boot; default 30 s. */
  readonly bootTimeoutMs?: number;
}

/** One machine of a lab, as of the moment it was read. */
export interface LabMachine {
  /** `<lab>-m<i>`: its machine name and hostname. */
  readonly name: string;
  /** Counted from 1. */
  readonly index: number;
  /** Its address on the lab bridge. */
  readonly ip: string;
  /** From its /etc/machine-id, kept across kill and boot. */
  readonly machineId: string;
  readonly rootDir: string;
  /** The journal directory on disk: read it with `journalctl -D`. */
  readonly journalDir: string;
  /** nspawn's output and the machine's console. */
  readonly consoleLog: string;
  /** Host side of its veth; down while cut or killed. */
  readonly hostVeth: string;
  /** Its systemd (PID 1 inside) as a host pid; `undefined` while killed. */
  readonly pid1: number | undefined;
  /** Its nspawn process; `undefined` while killed. */
  readonly nspawnPid: number | undefined;
  /** True while its link is cut. */
  readonly cut: boolean;
}

/** A machine by name (`lab-m1`), short name (`m1`), index (1) or as a {@link LabMachine}. */
export type MachineRef = string | number | { readonly name: string };

/** Options for {@link Lab.exec}. */
export interface ExecOptions {
  /** Written to the command's stdin. */
  readonly input?: string;
  /** Default 60 s; past it the command is killed and TIMEOUT thrown. */
  readonly timeoutMs?: number;
}

/** Options for {@link Lab.destroy}. */
export interface DestroyOptions {
  /** Keep the state dir (roots with their journals, console logs) for a post-mortem. */
  readonly keepJournals?: boolean;
  /** How long machines get to shut down in order before they are killed; default 10 s. */
  readonly graceMs?: number;
}

/** Environment of commands run inside machines: nothing of the caller's leaks in. */
const MACHINE_ENV = ['PATH=' + STANDARD_PATH, 'HOME=/root', 'LANG=C.UTF-8', 'USER=root', 'LOGNAME=root'];

/**
 * A lab of real systemd machines on this host (docs/lab.md): each a systemd-nspawn container with
 * systemd as PID 1 and the system D-Bus, on a private bridge the host also sits on (`hostIp`).
 * Runs as root without a host systemd. The state lives on disk, so another process can take over
 * a running lab with {@link Lab.open}, and a start cleans up whatever an earlier run of the same
 * name left behind.
 */
export class Lab {
  readonly name: string;
  readonly stateDir: string;
  private readonly naming: LabNaming;
  private readonly options: LabOptions | undefined;
  private state: LabState | undefined;
  /** Taken over with {@link Lab.open} rather than started here. */
  private opened = false;

  /** Describes a lab; nothing happens on the host until {@link start}. */
  constructor(options: LabOptions) {
    this.naming = labNaming(options.name);
    if (!Number.isInteger(options.machines) || options.machines < 1 || options.machines > 200) {
      throw new FleetError('HARNESS_START_FAILED', `A lab has 1-200 machines, not ${options.machines}`);
    }
    const index = options.subnetIndex;
    if (index !== undefined && (!Number.isInteger(index) || index < 1 || index > 254)) {
      throw new FleetError('HARNESS_START_FAILED', `subnetIndex must be 1-254, not ${index}`);
    }
    for (const bind of options.bindRo ?? []) {
      if (!bind.host.startsWith('/') || !bind.machine.startsWith('/')) {
        throw new FleetError(
          'HARNESS_START_FAILED',
          `Bind paths must be absolute: ${bind.host}:${bind.machine}`,
        );
      }
    }
    this.name = options.name;
    this.options = options;
    this.stateDir = options.stateDir ?? defaultStateDir(options.name);
  }

  /**
   * Takes over a lab that is up (started by this or another process) from its state file.
   * Throws HARNESS_COMMAND_FAILED when the lab has no state file.
   */
  static open(name: string, stateDir: string = defaultStateDir(name)): Lab {
    const state = readLabState(stateDir);
    if (state === undefined) {
      throw new FleetError('HARNESS_COMMAND_FAILED', `Lab ${name} is not up (no state in ${stateDir})`);
    }
    const lab = new Lab({
      name,
      machines: state.machines.length,
      stateDir,
      bindRo: state.bindRo,
      writableUsr: state.writableUsr === true,
    });
    lab.state = state;
    lab.opened = true;
    return lab;
  }

  /** What lab `name` has left on the host; see {@link LabLeftovers}. */
  static async findLeftovers(name: string, stateDir: string = defaultStateDir(name)): Promise<LabLeftovers> {
    return findLabLeftovers(labNaming(name), stateDir);
  }

  /**
   * Removes lab `name` from the host without asking its machines to shut down: what a start does
   * first, and what `down` does for a lab that has no state file any more. Throws
   * HARNESS_START_FAILED while another live process owns the lab (see lab-owner.ts).
   */
  static async removeLeftovers(
    name: string,
    stateDir: string = defaultStateDir(name),
    options: { readonly keepJournals?: boolean } = {},
  ): Promise<void> {
    assertNoOtherOwner(name, 'clean up');
    await removeLabLeftovers(labNaming(name), stateDir, { keepStateDir: options.keepJournals === true });
    releaseOwnership(name);
  }

  /** The host's address on the lab bridge: where services for the machines (etcd) listen. */
  get hostIp(): string {
    return this.requireState().hostIp;
  }

  /** The third octet of the lab's subnet 10.250.X.0/24. */
  get subnetIndex(): number {
    return this.requireState().subnetIndex;
  }

  /** The lab's bridge on the host. */
  get bridge(): string {
    return this.naming.bridge;
  }

  /** The machines, in index order, as they are now. */
  get machines(): LabMachine[] {
    return this.requireState().machines.map((machine) => toLabMachine(machine));
  }

  /** One machine; throws HARNESS_COMMAND_FAILED for a name the lab does not have. */
  machine(ref: MachineRef): LabMachine {
    return toLabMachine(this.machineState(ref));
  }

  /**
   * Removes what an earlier run of this lab name left behind, then builds the network and the
   * machine roots and boots all machines in parallel. Resolves when every machine's systemd is
   * `running` or `degraded`. On failure the lab is torn down, the state dir kept for its logs,
   * and the error (HARNESS_START_FAILED or TIMEOUT) carries the console tail.
   */
  async start(): Promise<void> {
    const options = this.options;
    if (options === undefined || this.state !== undefined) {
      throw new FleetError('HARNESS_START_FAILED', `Lab ${this.name} is already started`);
    }
    claimOwnership(this.name);
    try {
      await removeLabLeftovers(this.naming, this.stateDir);
      await this.build(options);
    } catch (err) {
      try {
        await removeLabLeftovers(this.naming, this.stateDir, { keepStateDir: true });
      } finally {
        this.state = undefined;
        releaseOwnership(this.name);
      }
      throw err;
    }
  }

  /** Lays out roots, state and network, then boots every machine. */
  private async build(options: LabOptions): Promise<void> {
    const subnetIndex = await this.pickSubnet(options.subnetIndex);
    const addresses = subnetAddresses(subnetIndex);
    const bindRo = options.bindRo ?? [];
    const indexes = Array.from({ length: options.machines }, (_, i) => i + 1);
    const hosts = [
      { ip: addresses.hostIp, name: `${this.name}-host` },
      ...indexes.map((i) => ({ ip: addresses.machineIp(i), name: this.naming.machineName(i) })),
    ];
    mkdirSync(join(this.stateDir, 'machines'), { recursive: true });
    const machines = indexes.map((index): MachineState => {
      const name = this.naming.machineName(index);
      const dir = join(this.stateDir, 'machines', name);
      const rootDir = join(dir, 'root');
      mkdirSync(dir);
      const machineId = prepareMachineRoot({
        rootDir,
        hostname: name,
        hosts,
        mountPoints: bindRo.map((bind) => bind.machine),
        dpkgDatabase: options.writableUsr === true,
      });
      if (options.writableUsr === true) mkdirSync(join(dir, USR_UPPER_DIR));
      return {
        index,
        name,
        ip: addresses.machineIp(index),
        machineId,
        rootDir,
        consoleLog: join(dir, 'console.log'),
        netns: this.naming.netnsName(name),
        hostVeth: this.naming.hostVeth(index),
        nspawnPid: undefined,
        pid1: undefined,
        cut: false,
      };
    });
    this.state = {
      version: 1,
      name: this.name,
      subnetIndex,
      hostIp: addresses.hostIp,
      bridge: this.naming.bridge,
      bindRo,
      writableUsr: options.writableUsr === true,
      machines,
    };
    this.save();
    await createBridge(this.naming, addresses.hostIp);
    for (const machine of machines) await createMachineNetwork(this.naming, machine.index, machine.ip);
    // Let every boot settle before the caller tears the lab down, so none writes state after that.
    const boots = await Promise.allSettled(machines.map((machine) => this.bootMachine(machine)));
    const failed = boots.find((boot) => boot.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  /**
   * Runs `argv` inside the machine as root (nsenter into all its namespaces, a clean environment)
   * and returns its exit code and output; a non-zero exit is a result, not an error. Throws
   * HARNESS_COMMAND_FAILED when the machine is not running and TIMEOUT after `timeoutMs`.
   */
  async exec(
    machine: MachineRef,
    argv: readonly string[],
    options: ExecOptions = {},
  ): Promise<CommandResult> {
    const state = this.machineState(machine);
    const pid1 = state.pid1;
    if (pid1 === undefined || readProcess(pid1)?.comm !== INIT_COMM) {
      throw new FleetError('HARNESS_COMMAND_FAILED', `Machine ${state.name} is not running`);
    }
    return runCommand(
      ['nsenter', '-t', String(pid1), '-a', '--', 'env', '-i', ...MACHINE_ENV, ...argv],
      options,
    );
  }

  /**
   * Kills the machine like a power cut: its host veth goes down first (so no FIN escapes), then its
   * PID 1 gets SIGKILL and the whole PID namespace dies. Resolves when nspawn has exited too.
   * A machine that is not running is left as it is.
   */
  async kill(machine: MachineRef): Promise<void> {
    const state = this.machineState(machine);
    await setLinkUp(state.hostVeth, false);
    state.cut = true;
    this.save();
    await this.stopMachine(state, 'SIGKILL', 10_000);
  }

  /**
   * Boots a killed machine again on the same root, so with the same machine-id; its link comes
   * up before it boots. Resolves when it is `running` or `degraded`. A running machine is left as
   * it is.
   */
  async boot(machine: MachineRef): Promise<void> {
    const state = this.machineState(machine);
    if (state.pid1 !== undefined && isAlive(state.pid1)) return;
    await setLinkUp(state.hostVeth, true);
    state.cut = false;
    this.save();
    await this.bootMachine(state);
  }

  /** Pulls the machine's cable: its host veth goes down. The machine keeps running. */
  async cut(machine: MachineRef): Promise<void> {
    const state = this.machineState(machine);
    await setLinkUp(state.hostVeth, false);
    state.cut = true;
    this.save();
  }

  /** Plugs the cable back in; traffic flows again within about a second. */
  async heal(machine: MachineRef): Promise<void> {
    const state = this.machineState(machine);
    await setLinkUp(state.hostVeth, true);
    state.cut = false;
    this.save();
  }

  /**
   * Shuts every machine down in order (SIGTERM to nspawn) and kills what is left after the grace
   * period, then deletes namespaces, links, bridge, cgroups, nspawn's propagate dirs and the state
   * dir (or, with `keepJournals`, only the state file). Idempotent. A lab that this object never
   * started or opened is left alone while another live process owns it: nothing of it is ours.
   */
  async destroy(options: DestroyOptions = {}): Promise<void> {
    if (this.state === undefined && !this.opened && otherLiveOwner(this.name) !== undefined) return;
    const machines = this.state?.machines ?? [];
    // A machine that will not stop is no reason to give up: removeLabLeftovers kills what is left.
    await Promise.allSettled(
      machines.map((machine) => this.stopMachine(machine, 'SIGTERM', options.graceMs ?? 10_000)),
    );
    await removeLabLeftovers(this.naming, this.stateDir, { keepStateDir: options.keepJournals === true });
    releaseOwnership(this.name);
    this.state = undefined;
  }

  private async bootMachine(machine: MachineState): Promise<void> {
    const cgroupDirs = machineCgroupDirs(this.naming, machine.name);
    removeMachineLeftovers(machine.name, cgroupDirs);
    createMachineCgroups(this.naming, machine.name);
    const options: NspawnBootOptions = {
      machine: machine.name,
      rootDir: machine.rootDir,
      netnsPath: `/run/netns/${machine.netns}`,
      cgroupDirs,
      bindRo: this.requireState().bindRo,
      ...(this.requireState().writableUsr === true
        ? { usrUpperDir: join(dirname(machine.rootDir), USR_UPPER_DIR) }
        : {}),
      consoleLog: machine.consoleLog,
      timeoutMs: this.options?.bootTimeoutMs ?? 30_000,
    };
    machine.nspawnPid = launchNspawn(options);
    this.save();
    machine.pid1 = await waitForBoot(options, machine.nspawnPid);
    this.save();
  }

  /**
   * Stops one machine: `SIGTERM` asks nspawn for an orderly shutdown, `SIGKILL` goes to its PID 1.
   * Whatever still runs after `graceMs` is killed.
   */
  private async stopMachine(
    machine: MachineState,
    signal: 'SIGTERM' | 'SIGKILL',
    graceMs: number,
  ): Promise<void> {
    const { nspawnPid, pid1 } = machine;
    const pids = [nspawnPid, pid1].filter((pid): pid is number => pid !== undefined);
    if (signal === 'SIGTERM' && nspawnPid !== undefined) signalIfComm(nspawnPid, NSPAWN_COMM, 'SIGTERM');
    if (signal === 'SIGKILL' && pid1 !== undefined) signalIfComm(pid1, INIT_COMM, 'SIGKILL');
    if (!(await waitUntilGone(pids, graceMs))) {
      if (pid1 !== undefined) signalIfComm(pid1, INIT_COMM, 'SIGKILL');
      if (nspawnPid !== undefined) signalIfComm(nspawnPid, NSPAWN_COMM, 'SIGKILL');
      if (!(await waitUntilGone(pids, 10_000))) {
        throw new FleetError(
          'HARNESS_COMMAND_FAILED',
          `Machine ${machine.name} survives SIGKILL (pids ${pids.join(', ')})`,
        );
      }
    }
    machine.nspawnPid = undefined;
    machine.pid1 = undefined;
    if (this.state !== undefined) this.save();
    removeMachineLeftovers(machine.name, machineCgroupDirs(this.naming, machine.name));
  }

  private async pickSubnet(requested: number | undefined): Promise<number> {
    if (requested === undefined) return chooseSubnetIndex(defaultSubnetIndex(this.name));
    if ((await chooseSubnetIndex(requested)) !== requested) {
      throw new FleetError(
        'HARNESS_START_FAILED',
        `Subnet 10.250.${requested}.0/24 is already in use on this host`,
      );
    }
    return requested;
  }

  private machineState(ref: MachineRef): MachineState {
    const machines = this.requireState().machines;
    const wanted = typeof ref === 'object' ? ref.name : String(ref);
    const found = machines.find(
      (machine) =>
        machine.name === wanted ||
        `${this.name}-${wanted}` === machine.name ||
        String(machine.index) === wanted,
    );
    if (found === undefined) {
      throw new FleetError('HARNESS_COMMAND_FAILED', `Lab ${this.name} has no machine "${wanted}"`);
    }
    return found;
  }

  private requireState(): LabState {
    if (this.state === undefined)
      throw new FleetError('HARNESS_COMMAND_FAILED', `Lab ${this.name} is not started`);
    return this.state;
  }

  private save(): void {
    writeLabState(this.stateDir, this.requireState());
  }
}

function toLabMachine(machine: MachineState): LabMachine {
  return {
    name: machine.name,
    index: machine.index,
    ip: machine.ip,
    machineId: machine.machineId,
    rootDir: machine.rootDir,
    journalDir: join(machine.rootDir, 'var/log/journal'),
    consoleLog: machine.consoleLog,
    hostVeth: machine.hostVeth,
    pid1: machine.pid1,
    nspawnPid: machine.nspawnPid,
    cut: machine.cut,
  };
}

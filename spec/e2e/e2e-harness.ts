/**
 * What the end-to-end specs share: a {@link FleetCluster} driven by the built fleetctl, unit files
 * written on the host for fleetctl to read, parsers for fleetctl's tables, and the check that
 * ties fleetctl's view to systemd's: every row of `fleetctl list-units` says what
 * `systemctl show` says on that machine, and no other machine has the unit loaded.
 */
import { expect } from 'chai';
import { before, after, afterEach } from 'mocha';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { EtcdRegistry } from '../../registry/etcd-registry.js';
import {
  FleetCluster,
  type ClusterMachine,
  type CommandResult,
  type FleetClusterOptions,
  type FleetctlOptions,
  type MachineRef,
} from '../../systemd-fixtures/cluster/fleet-cluster.js';
import { eventually } from '../../systemd-fixtures/eventually.js';

/** fleetctl as the package installs it in every machine: /usr/bin/fleetctl, on PATH. */
export const MACHINE_FLEETCTL = ['fleetctl'];

/** Prints one figure on one line, so a CI log can be grepped for `e2e:`. */
export function figure(text: string): void {
  console.log(`      e2e: ${text}`);
}

/** Milliseconds as seconds with one decimal: `3.9 s`. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** A single-process service (lab systemd is cgroup v1 only: multi-process services may hang stopping). */
export function serviceFile(
  options: {
    readonly description?: string;
    /** The shell command that runs before `exec sleep infinity`, e.g. `echo hello`. */
    readonly before?: string;
    /** `[X-Fleet]` lines, `Key=Value`. */
    readonly fleet?: readonly string[];
  } = {},
): string {
  const lines = ['[Unit]', `Description=${options.description ?? 'fleet-ts e2e unit %n'}`, '', '[Service]'];
  lines.push(
    options.before === undefined
      ? 'ExecStart=/bin/sh -c "exec sleep infinity"'
      : `ExecStart=/bin/sh -c "${options.before}; exec sleep infinity"`,
  );
  if (options.fleet !== undefined && options.fleet.length > 0) lines.push('', '[X-Fleet]', ...options.fleet);
  return `${lines.join('\n')}\n`;
}

/** A temporary folder on the host holding unit files that fleetctl reads by path. */
export class UnitDir {
  private constructor(readonly dir: string) {}

  static async create(): Promise<UnitDir> {
    return new UnitDir(await mkdtemp(join(tmpdir(), 'fleet-e2e-units-')));
  }

  /** The path fleetctl is given for `name` (the file need not exist: instances of templates). */
  path(name: string): string {
    return join(this.dir, name);
  }

  /** Writes `name` and returns its path. */
  async write(name: string, text: string): Promise<string> {
    await writeFile(this.path(name), text);
    return this.path(name);
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** One row of `fleetctl list-units --no-legend --full --fields unit,machine,active,sub`. */
export interface ListedUnit {
  readonly unit: string;
  readonly machineId: string;
  readonly ip: string;
  readonly active: string;
  readonly sub: string;
}

/** The fields fleetctl is asked for when its list-units table is parsed. */
export const LIST_UNITS_ARGS = ['list-units', '--no-legend', '--full', '--fields', 'unit,machine,active,sub'];

function tableRows(stdout: string): string[][] {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => line.split(/\t+/));
}

/** Parses {@link LIST_UNITS_ARGS}' output. The machine column is `<full id>/<ip>`. */
export function parseListUnits(stdout: string): ListedUnit[] {
  return tableRows(stdout).map((cells) => {
    const [unit = '', machine = '', active = '', sub = ''] = cells;
    const [machineId = '', ip = ''] = machine.split('/');
    return { unit, machineId, ip, active, sub };
  });
}

/** One row of `fleetctl list-unit-files --no-legend --full` (default fields). */
export interface ListedUnitFile {
  readonly unit: string;
  readonly hash: string;
  readonly dstate: string;
  readonly state: string;
  /** `global`, `-`, or the machine's full ID (the `/<ip>` cut off). */
  readonly target: string;
  /** The `<ip>` after the machine ID, or '' for `global` and `-`. */
  readonly targetIp: string;
}

/** Parses `list-unit-files --no-legend --full`. */
export function parseListUnitFiles(stdout: string): ListedUnitFile[] {
  return tableRows(stdout).map((cells) => {
    const [unit = '', hash = '', dstate = '', state = '', target = ''] = cells;
    const [id = '', ip = ''] = target.split('/');
    return { unit, hash, dstate, state, target: id, targetIp: ip };
  });
}

/** What `systemctl show` says about one unit. */
export interface SystemdUnit {
  readonly id: string;
  readonly load: string;
  readonly active: string;
  readonly sub: string;
  readonly mainPid: number;
  readonly description: string;
}

/** What the cluster says about a set of units at one moment, from fleetctl and from systemd. */
export interface Observation {
  /** list-units rows of the observed units. */
  readonly rows: readonly ListedUnit[];
  /** systemd's view, per running machine (short name), per unit. */
  readonly systemd: ReadonlyMap<string, ReadonlyMap<string, SystemdUnit>>;
}

/** What a unit is expected to look like once the cluster settles. */
export interface UnitExpectation {
  /** `active/running`, `inactive/dead`, ...; `absent` = no row and loaded nowhere. */
  readonly state: string;
  /** Exactly these machines (short names). */
  readonly on?: readonly string[];
  /** Or: this many machines. Default 1 unless `on` says otherwise. */
  readonly count?: number;
  /** And never on these. */
  readonly notOn?: readonly string[];
}

/** Where each unit settled: its machines' short names, sorted. */
export type Placements = Map<string, string[]>;

/** A {@link FleetCluster} seen through fleetctl, with systemd inside each machine as the judge. */
export class E2eCluster {
  private reg: EtcdRegistry | undefined;

  constructor(readonly cluster: FleetCluster) {}

  /** A registry client on the cluster's etcd: for polling (50 ms) where fleetctl would be too slow. */
  registry(): EtcdRegistry {
    this.reg ??= this.cluster.registry({ requestTimeoutMs: 1_000 });
    return this.reg;
  }

  /** The built fleetctl on the host against `on`'s fleetd (default: the first reachable machine). */
  fleetctl(
    args: readonly string[],
    on: MachineRef = this.reachable(),
    options: FleetctlOptions = {},
  ): Promise<CommandResult> {
    return this.cluster.fleetctl(on, args, options);
  }

  /** Like {@link fleetctl}, and fails the test unless fleetctl exits 0. */
  async ok(
    args: readonly string[],
    on: MachineRef = this.reachable(),
    options: FleetctlOptions = {},
  ): Promise<CommandResult> {
    const r = await this.fleetctl(args, on, options);
    expect(r.code, `fleetctl ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`).to.equal(0);
    return r;
  }

  /** fleetctl run inside a machine, with its default endpoint (/var/run/fleet.sock), no flags. */
  inside(machine: MachineRef, args: readonly string[]): Promise<CommandResult> {
    return this.cluster.exec(machine, [...MACHINE_FLEETCTL, ...args]);
  }

  /** The machine (short name) whose full ID this is; fails the test for an unknown ID. */
  shortName(machineId: string): string {
    const m = this.cluster.machineById(machineId);
    expect(m, `machine ${machineId} is one of the cluster's`).not.to.equal(undefined);
    return m?.shortName ?? machineId;
  }

  /** The first machine that runs and is not cut off: where fleetctl goes by default. */
  reachable(): ClusterMachine {
    const m = this.cluster.machines.find((x) => x.running && !x.cut);
    if (m === undefined) throw new Error('no machine is running and connected');
    return m;
  }

  /** Machines whose systemd runs (killed ones are left out; cut ones are in). */
  running(): ClusterMachine[] {
    return this.cluster.machines.filter((m) => m.running);
  }

  async listUnits(on: MachineRef = this.reachable()): Promise<ListedUnit[]> {
    const r = await this.ok(LIST_UNITS_ARGS, on);
    return parseListUnits(r.stdout);
  }

  async listUnitFiles(on: MachineRef = this.reachable()): Promise<ListedUnitFile[]> {
    const r = await this.ok(['list-unit-files', '--no-legend', '--full'], on);
    return parseListUnitFiles(r.stdout);
  }

  /** The list-unit-files row of `unit`; fails the test when there is none. */
  async unitFile(unit: string, on: MachineRef = this.reachable()): Promise<ListedUnitFile> {
    const row = (await this.listUnitFiles(on)).find((r) => r.unit === unit);
    expect(row, `${unit} in list-unit-files`).not.to.equal(undefined);
    return row!;
  }

  /** `systemctl show` of `units` inside one machine, in one call. */
  async systemd(machine: MachineRef, units: readonly string[]): Promise<Map<string, SystemdUnit>> {
    const result = new Map<string, SystemdUnit>();
    if (units.length === 0) return result;
    const r = await this.cluster.exec(machine, [
      'systemctl',
      'show',
      '-p',
      'Id,LoadState,ActiveState,SubState,MainPID,Description',
      '--',
      ...units,
    ]);
    expect(r.code, `systemctl show in ${this.cluster.machine(machine).shortName}: ${r.stderr}`).to.equal(0);
    const blocks = r.stdout.split(/\n\s*\n/).filter((b) => b.trim() !== '');
    blocks.forEach((block, i) => {
      const props = new Map<string, string>();
      for (const line of block.split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0) props.set(line.slice(0, eq), line.slice(eq + 1));
      }
      // `systemctl show` prints one block per argument, in order; Id is the unit's own name.
      const name = units[i] ?? props.get('Id') ?? '';
      result.set(name, {
        id: props.get('Id') ?? '',
        load: props.get('LoadState') ?? '',
        active: props.get('ActiveState') ?? '',
        sub: props.get('SubState') ?? '',
        mainPid: Number(props.get('MainPID') ?? '0'),
        description: props.get('Description') ?? '',
      });
    });
    return result;
  }

  /** fleetctl's list-units and systemd in every running machine, read at (about) one moment. */
  async observe(units: readonly string[], on: MachineRef = this.reachable()): Promise<Observation> {
    const wanted = new Set(units);
    const [rows, ...views] = await Promise.all([
      this.listUnits(on),
      ...this.running().map(async (m) => [m.shortName, await this.systemd(m, units)] as const),
    ]);
    return { rows: rows.filter((r) => wanted.has(r.unit)), systemd: new Map(views) };
  }

  /**
   * Fails unless fleetctl and systemd agree on `units`: a list-units row for a unit on a machine
   * exactly where systemd has it loaded, with systemd's ActiveState and SubState, and the row's
   * address that machine's. Returns where each unit is.
   */
  agree(units: readonly string[], obs: Observation): Placements {
    const placements: Placements = new Map();
    for (const unit of units) {
      const rows = obs.rows.filter((r) => r.unit === unit);
      const listed = rows.map((r) => this.shortName(r.machineId)).sort();
      expect(new Set(listed).size, `${unit} listed once per machine: ${listed.join(', ')}`).to.equal(
        listed.length,
      );
      const loaded = [...obs.systemd]
        .filter(([, view]) => {
          const load = view.get(unit)?.load;
          return load !== undefined && load !== 'not-found';
        })
        .map(([m]) => m)
        .sort();
      expect(listed, `machines list-units shows ${unit} on vs where systemd has it loaded`).to.deep.equal(
        loaded,
      );
      for (const row of rows) {
        const m = this.cluster.machineById(row.machineId)!;
        const sd = obs.systemd.get(m.shortName)?.get(unit);
        expect(row.ip, `${unit} row address`).to.equal(m.ip);
        expect(`${row.active}/${row.sub}`, `${unit} on ${m.shortName}: list-units vs systemctl`).to.equal(
          `${sd?.active}/${sd?.sub}`,
        );
      }
      placements.set(unit, listed);
    }
    return placements;
  }

  /**
   * One look: fails unless fleetctl and systemd agree on every unit of `expected` and each unit
   * is where and as it is expected. Returns where each unit is.
   */
  async check(expected: Readonly<Record<string, UnitExpectation>>, on?: MachineRef): Promise<Placements> {
    const units = Object.keys(expected);
    const obs = await this.observe(units, on);
    const placements = this.agree(units, obs);
    for (const [unit, want] of Object.entries(expected)) {
      const machines = placements.get(unit) ?? [];
      if (want.state === 'absent') {
        expect(machines, `${unit} should be nowhere`).to.deep.equal([]);
        continue;
      }
      if (want.on !== undefined) expect(machines, `machines of ${unit}`).to.deep.equal([...want.on].sort());
      else expect(machines, `machines of ${unit}`).to.have.length(want.count ?? 1);
      for (const m of want.notOn ?? []) expect(machines, `machines of ${unit}`).not.to.include(m);
      for (const row of obs.rows.filter((r) => r.unit === unit)) {
        expect(`${row.active}/${row.sub}`, `${unit} on ${this.shortName(row.machineId)}`).to.equal(
          want.state,
        );
      }
    }
    return placements;
  }

  /** Waits until {@link check} passes; returns where each unit settled. */
  settle(
    expected: Readonly<Record<string, UnitExpectation>>,
    options: { readonly timeoutMs?: number; readonly on?: MachineRef; readonly description?: string } = {},
  ): Promise<Placements> {
    return eventually(() => this.check(expected, options.on), {
      timeoutMs: options.timeoutMs ?? 20_000,
      intervalMs: 200,
      description: options.description ?? `${Object.keys(expected).join(', ')} to settle`,
    });
  }

  /**
   * The machines (short names) whose systemd runs `unit` now (ActiveState active, activating,
   * reloading or deactivating), checked on every running machine.
   */
  async runningOn(units: readonly string[]): Promise<Map<string, string[]>> {
    const views = await Promise.all(
      this.running().map(async (m) => [m.shortName, await this.systemd(m, units)] as const),
    );
    const result = new Map<string, string[]>();
    for (const unit of units) {
      result.set(
        unit,
        views
          .filter(([, v]) =>
            ['active', 'activating', 'reloading', 'deactivating'].includes(v.get(unit)?.active ?? ''),
          )
          .map(([m]) => m)
          .sort(),
      );
    }
    return result;
  }

  /** MainPID of each unit on the machine that runs it (fails when a unit runs on no machine or on several). */
  async mainPids(units: readonly string[]): Promise<Map<string, { machine: string; pid: number }>> {
    const views = await Promise.all(
      this.running().map(async (m) => [m.shortName, await this.systemd(m, units)] as const),
    );
    const result = new Map<string, { machine: string; pid: number }>();
    for (const unit of units) {
      const on = views.filter(([, v]) => v.get(unit)?.active === 'active');
      expect(
        on.map(([m]) => m),
        `${unit} runs on exactly one machine`,
      ).to.have.length(1);
      const [machine, view] = on[0]!;
      const pid = view.get(unit)?.mainPid ?? 0;
      expect(pid, `${unit} MainPID on ${machine}`).to.be.greaterThan(0);
      result.set(unit, { machine, pid });
    }
    return result;
  }

  /** Destroys units (ignoring the exit code: a failed test may have left some half-made). */
  async destroy(units: readonly string[], on: MachineRef = this.reachable()): Promise<void> {
    if (units.length > 0) await this.fleetctl(['destroy', ...units], on);
  }
}

/** Sorted machine short names, from a map of unit placements, of one unit. */
export function onlyMachine(placements: Placements, unit: string): string {
  const machines = placements.get(unit) ?? [];
  expect(machines, `${unit} on one machine`).to.have.length(1);
  return machines[0]!;
}

/** What a spec file's shared cluster gives its tests (see `useE2eCluster`). */
export interface E2eSuite {
  /** The cluster with the e2e checks; throws when it did not start. */
  readonly e: () => E2eCluster;
  readonly c: () => FleetCluster;
  /** The host folder the tests write unit files into. */
  readonly units: () => UnitDir;
}

/**
 * One cluster for a whole spec file: started in `before`, destroyed in `after` (keeping the
 * machines' journals when a test failed), with a temporary unit folder, and both times printed
 * as figures (`<label> cluster ... ready in`, `<label> file took`).
 */
export function useE2eCluster(
  options: FleetClusterOptions,
  labels: { readonly ready: string; readonly file: string },
): E2eSuite {
  let e2e: E2eCluster | undefined;
  let units: UnitDir | undefined;
  let failed = false;
  let fileStarted = 0;

  before(async function () {
    this.timeout(120_000);
    fileStarted = Date.now();
    e2e = new E2eCluster(await FleetCluster.start(options));
    units = await UnitDir.create();
    figure(`${labels.ready} ready in ${seconds(Date.now() - fileStarted)}`);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async function () {
    this.timeout(90_000);
    await units?.remove();
    // A failed run keeps the journals: journalctl -D /var/lib/fleet-ts-lab/<name>/machines/*/root/var/log/journal
    await e2e?.cluster.destroy({ keepJournals: failed });
    figure(`${labels.file} file took ${seconds(Date.now() - fileStarted)}`);
  });

  const e = (): E2eCluster => {
    if (e2e === undefined) throw new Error('the cluster did not start');
    return e2e;
  };
  return {
    e,
    c: () => e().cluster,
    units: () => {
      if (units === undefined) throw new Error('no unit folder');
      return units;
    },
  };
}

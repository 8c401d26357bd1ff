/**
 * The agent's view of systemd, hiding D-Bus (docs/style.md). Two implementations pass one contract
 * suite (spec/contracts/systemd-manager.contract.ts): `DbusSystemdManager` against the real
 * systemd of a lab machine, and `InMemorySystemdManager` for fast component tests.
 *
 * Unit files live in one directory that fleet owns (default `/run/fleet/units/`); systemd sees
 * them through runtime links. Writing, linking and removing never reload systemd by themselves:
 * the caller batches its changes and calls `reload()` once.
 */

/** systemd's view of one unit (ListUnitsByNames / unit properties). */
export interface UnitStatus {
  readonly name: string;
  /** `loaded`, `not-found`, `bad-setting`, `error`, `masked`, ... */
  readonly loadState: string;
  /** `active`, `inactive`, `failed`, `activating`, `deactivating`, `reloading`, ... */
  readonly activeState: string;
  /** `running`, `dead`, `exited`, `listening`, `failed`, ... */
  readonly subState: string;
}

/** How a start or stop job ended (systemd's JobRemoved result). */
export type JobResult = 'done' | 'canceled' | 'timeout' | 'failed' | 'dependency' | 'skipped';

/** Stops a subscription; idempotent. */
export interface SystemdSubscription {
  close(): Promise<void>;
}

export interface SystemdManager {
  /** The directory fleet writes unit files to. */
  readonly unitsDirectory: string;
  /**
   * True when a new unit, installed and never loaded before, can be started without a reload
   * (systemd loads it from disk on demand); the agent then leaves such a reload out.
   */
  readonly loadsNewUnitsOnDemand?: boolean;
  /** Names of the unit files in the units directory, sorted (what fleet owns on this machine). */
  listUnitFiles(): Promise<string[]>;
  /** The contents of one of fleet's unit files, or undefined when there is none. */
  readUnitFile(name: string): Promise<string | undefined>;
  /**
   * Writes a unit file atomically (temporary file + rename, mode 0644) and links it into systemd
   * at runtime; with `enable`, also enables it at runtime (units with an [Install] section, as
   * fleet did). Idempotent. Does not reload.
   */
  installUnit(name: string, contents: string, options?: { readonly enable?: boolean }): Promise<void>;
  /** Disables, unlinks and deletes a unit file and resets its failed state. Idempotent. No reload. */
  removeUnit(name: string): Promise<void>;
  /** systemd daemon-reload: makes written and removed files take effect. */
  reload(): Promise<void>;
  /** Starts a unit (job mode `replace`); resolves when systemd's job has finished. */
  startUnit(name: string): Promise<JobResult>;
  /** Stops a unit (job mode `replace`); resolves when systemd's job has finished. */
  stopUnit(name: string): Promise<JobResult>;
  /** The states of the named units, in the order asked; unknown units have loadState `not-found`. */
  unitStatus(names: readonly string[]): Promise<UnitStatus[]>;
  /**
   * Calls `listener` with a unit's name whenever systemd signals a change of its state (or its
   * removal). Signals, not polling. The listener must not throw.
   */
  subscribe(listener: (unit: string) => void): Promise<SystemdSubscription>;
  /**
   * Calls `listener` once if the connection to systemd is lost for good (the bus went away): every
   * later call fails, and the owner must connect anew (fleetd exits so that systemd restarts it).
   * Not called after `close()`.
   */
  onLost(listener: (error: Error) => void): void;
  /**
   * The type of the job systemd runs now on the unit that contains process `pid` (fleetd's own
   * unit): `restart` (a `systemctl restart`, a package upgrade's restart), `stop` (a `systemctl
   * stop`, a system shutdown), another job type, or undefined when the process is in no unit or
   * its unit has no job (fleetd not started by systemd, or signalled by hand).
   */
  pendingJobOf(pid: number): Promise<string | undefined>;
  /** Closes the connection. Idempotent. */
  close(): Promise<void>;
}

/* eslint-disable max-lines -- one adapter holds every dbus-next call (the only file that imports it); splitting its unit-file directory and job waiting out is open work. */
/**
 * `SystemdManager` over D-Bus: the machine's systemd through `org.freedesktop.systemd1.Manager` on
 * the system bus, with dbus-next (the only file that imports it, docs/style.md). The calls are the ones
 * fleet made (docs/fleet-compat.md §5.5); states come from `ListUnitsByNames`, and changes from signals
 * (`PropertiesChanged`, `UnitNew`, `UnitRemoved`, `JobRemoved`) where fleet polled every second.
 *
 * Calls go out as raw messages rather than through introspected proxy objects: no introspection
 * round trip per object, one place for timeouts, and the match rules are ours to control.
 */
import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { DBusError, Message, MessageType, sessionBus, systemBus, type MessageBus } from 'dbus-next';

import { FleetError, describeError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { isValidUnitName, parseValidUnitName, unitFileTempName } from '../unit/unit-name.js';
import type { JobResult, SystemdManager, SystemdSubscription, UnitStatus } from './systemd-manager.js';

/** How to reach systemd and where fleet keeps its unit files. */
export interface DbusSystemdManagerOptions {
  /** A D-Bus address such as `unix:path=/run/dbus/system_bus_socket`; default: the system bus. */
  readonly busAddress?: string;
  /** Where unit files are written; default `/run/fleet/units/` (fleet's `units_directory`). */
  readonly unitsDirectory?: string;
  /** Longest wait for the reply to one D-Bus call (and for connecting); default 25 s, sd-bus's. */
  readonly callTimeoutMs?: number;
  /** Longest wait for a start or stop job to finish after systemd accepted it; default 5 min. */
  readonly jobTimeoutMs?: number;
  readonly logger?: Logger;
}

const SYSTEMD = 'org.freedesktop.systemd1';
const SYSTEMD_PATH = '/org/freedesktop/systemd1';
const MANAGER = 'org.freedesktop.systemd1.Manager';
const UNIT_INTERFACE = 'org.freedesktop.systemd1.Unit';
const PROPERTIES = 'org.freedesktop.DBus.Properties';
const UNIT_PATH_PREFIX = '/org/freedesktop/systemd1/unit/';
const NO_SUCH_UNIT = 'org.freedesktop.systemd1.NoSuchUnit';

/** fleet's default `units_directory`. */
export const DEFAULT_UNITS_DIRECTORY = '/run/fleet/units/';
const DEFAULT_CALL_TIMEOUT_MS = 25_000;
const DEFAULT_JOB_TIMEOUT_MS = 300_000;

/** D-Bus errors that say the peer or the bus is unreachable, not that the request was wrong. */
const UNAVAILABLE_ERRORS: ReadonlySet<string> = new Set([
  'org.freedesktop.DBus.Error.NoReply',
  'org.freedesktop.DBus.Error.Timeout',
  'org.freedesktop.DBus.Error.TimedOut',
  'org.freedesktop.DBus.Error.Disconnected',
  'org.freedesktop.DBus.Error.ServiceUnknown',
  'org.freedesktop.DBus.Error.NameHasNoOwner',
  'org.freedesktop.DBus.Error.LimitsExceeded',
  'org.freedesktop.DBus.Error.NoMemory',
]);

const systemdMatch = (rule: string): string => `type='signal',sender='${SYSTEMD}',${rule}`;
/** Always on: a start or stop waits for its JobRemoved, which systemd sends to the job's requester. */
const JOB_MATCH = systemdMatch(`path='${SYSTEMD_PATH}',interface='${MANAGER}',member='JobRemoved'`);
/** Added by the first subscribe(). */
const SUBSCRIBE_MATCHES = [
  systemdMatch(`path='${SYSTEMD_PATH}',interface='${MANAGER}',member='UnitNew'`),
  systemdMatch(`path='${SYSTEMD_PATH}',interface='${MANAGER}',member='UnitRemoved'`),
  systemdMatch(
    `path_namespace='/org/freedesktop/systemd1/unit',interface='${PROPERTIES}',` +
      `member='PropertiesChanged',arg0='${UNIT_INTERFACE}'`,
  ),
];

/**
 * Decodes systemd's bus-label escaping (`bus_label_unescape`): every byte outside `[A-Za-z0-9]`
 * (and a leading digit) is written `_xx` in lower-case hex, and `_` alone is the empty string.
 */
export function unescapeBusLabel(label: string): string {
  if (label === '_') return '';
  const bytes: number[] = [];
  for (let i = 0; i < label.length; i++) {
    const hex = label.slice(i + 1, i + 3);
    if (label[i] === '_' && /^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(label[i] ?? '', 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** systemd's `bus_label_escape`, the inverse of {@link unescapeBusLabel}. */
export function escapeBusLabel(value: string): string {
  if (value === '') return '_';
  let out = '';
  let first = true;
  for (const byte of Buffer.from(value, 'utf8')) {
    const alpha = (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a);
    const digit = byte >= 0x30 && byte <= 0x39;
    out += alpha || (digit && !first) ? String.fromCharCode(byte) : `_${byte.toString(16).padStart(2, '0')}`;
    first = false;
  }
  return out;
}

/**
 * The unit name behind a unit's object path, `/org/freedesktop/systemd1/unit/web_2dapp_40a_2eservice`
 * -> `web-app@a.service`; undefined for any other path.
 */
export function unitNameFromObjectPath(path: string): string | undefined {
  if (!path.startsWith(UNIT_PATH_PREFIX)) return undefined;
  const label = path.slice(UNIT_PATH_PREFIX.length);
  if (label === '' || label.includes('/')) return undefined;
  return unescapeBusLabel(label);
}

/**
 * systemd's job results beyond the six fleet knows fold into the nearest one: `assert`,
 * `unsupported` and `invalid` are failures, `collected` a cancellation, `once` a skip.
 */
function toJobResult(result: string): JobResult {
  switch (result) {
    case 'done':
    case 'canceled':
    case 'timeout':
    case 'failed':
    case 'dependency':
    case 'skipped':
      return result;
    case 'collected':
      return 'canceled';
    case 'once':
      return 'skipped';
    default:
      return 'failed';
  }
}

/** The D-Bus error name behind a FleetError thrown by a call, if it came from a D-Bus error reply. */
function dbusErrorName(err: unknown): string | undefined {
  return err instanceof FleetError && err.cause instanceof DBusError ? err.cause.type : undefined;
}

function isNoSuchUnit(err: unknown): boolean {
  return dbusErrorName(err) === NO_SUCH_UNIT;
}

function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}

interface JobWaiter {
  readonly resolve: (result: string) => void;
  readonly abandon: (reason: string) => void;
}

/** One row of ListUnitsByNames: `a(ssssssouso)`. */
type ListedUnit = [string, string, string, string, string, string, string, number, string, string];

/**
 * The real `SystemdManager`: unit files in `unitsDirectory`, linked at runtime, and systemd driven
 * over its D-Bus API. Create it with {@link DbusSystemdManager.connect}. The connection is not
 * re-established: once it is lost, every call fails with a non-retryable `SYSTEMD_UNAVAILABLE`
 * and the owner connects anew.
 *
 * Errors: `SYSTEMD_UNAVAILABLE` (retryable) when systemd or the bus does not answer in time,
 * `SYSTEMD_FAILED` when systemd refuses a call (the message names the call, the unit and systemd's
 * reason), `UNIT_FILE_IO_FAILED` for the file system, `UNIT_NAME_INVALID` for a bad name.
 */
export class DbusSystemdManager implements SystemdManager {
  readonly unitsDirectory: string;
  /**
   * systemd (since v245) loads a unit that is not loaded when it is started and its unit
   * directories changed since it last looked; installUnit links into /run/systemd/system, which
   * changes them. On an older systemd the agent's start fails and it falls back to a reload.
   */
  readonly loadsNewUnitsOnDemand = true;
  private readonly callTimeoutMs: number;
  private readonly jobTimeoutMs: number;
  private readonly log: Logger;
  /**
   * Jobs systemd accepted, by job path, waiting for their JobRemoved. Several callers can wait for
   * one job: systemd merges a start into a start already queued for the unit and answers both
   * with the same job path.
   */
  private readonly jobWaiters = new Map<string, Set<JobWaiter>>();
  /**
   * One buffer per start or stop whose reply has not arrived yet: a JobRemoved can overtake the
   * reply that names its job (a start of an active unit finishes at once), so it is kept here.
   */
  private readonly earlyJobs = new Set<Map<string, string>>();
  private readonly listeners = new Set<(unit: string) => void>();
  /** Calls awaiting a reply: failed at once when the connection closes rather than at their timeout. */
  private readonly pendingCalls = new Set<(reason: string) => void>();
  private subscribed: Promise<void> | undefined;
  private lost: Error | undefined;
  private readonly lostListeners: ((error: Error) => void)[] = [];
  private closed = false;

  private constructor(
    private readonly bus: MessageBus,
    private readonly address: string,
    options: DbusSystemdManagerOptions,
  ) {
    this.unitsDirectory = options.unitsDirectory ?? DEFAULT_UNITS_DIRECTORY;
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.jobTimeoutMs = options.jobTimeoutMs ?? DEFAULT_JOB_TIMEOUT_MS;
    this.log = (options.logger ?? silentLogger).child({ component: 'systemd-dbus' });
    bus.on('message', (msg) => {
      this.onMessage(msg);
    });
    bus.on('error', (err: unknown) => {
      this.onConnectionLost(err);
    });
    // dbus-next's bus does not forward the end of its stream (the daemon closed the socket), so
    // without this, waiting jobs would only learn of it at their timeout.
    (bus as unknown as { _connection?: EventEmitter })._connection?.on('end', () => {
      this.onConnectionLost(new Error('the bus closed the connection'));
    });
  }

  /**
   * Connects to the bus and prepares for job tracking. Throws `SYSTEMD_UNAVAILABLE` when the bus
   * cannot be reached or does not answer within `callTimeoutMs`.
   */
  static async connect(options: DbusSystemdManagerOptions = {}): Promise<DbusSystemdManager> {
    const address = options.busAddress ?? process.env.DBUS_SYSTEM_BUS_ADDRESS ?? 'the system bus';
    const bus = await openBus(options.busAddress, address, options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS);
    const manager = new DbusSystemdManager(bus, address, options);
    try {
      await manager.addMatch(JOB_MATCH);
    } catch (err) {
      await manager.close();
      throw err;
    }
    return manager;
  }

  async listUnitFiles(): Promise<string[]> {
    this.assertOpen('list unit files');
    try {
      const entries = await readdir(this.unitsDirectory, { withFileTypes: true });
      // Temporary files of an interrupted write start with "." and are not valid unit names.
      return entries
        .filter((e) => e.isFile() && isValidUnitName(e.name))
        .map((e) => e.name)
        .sort();
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw this.ioError(`Cannot list unit files in ${this.unitsDirectory}`, err);
    }
  }

  async readUnitFile(name: string): Promise<string | undefined> {
    this.assertOpen(`read ${name}`);
    const path = this.unitPath(name);
    try {
      return await readIfExists(path);
    } catch (err) {
      throw this.ioError(`Cannot read unit file ${path}`, err);
    }
  }

  async installUnit(
    name: string,
    contents: string,
    options: { readonly enable?: boolean } = {},
  ): Promise<void> {
    this.assertOpen(`install ${name}`);
    const path = this.unitPath(name);
    await this.writeAtomically(path, name, contents);
    await this.call('LinkUnitFiles', 'asbb', [[path], true, true], name);
    if (options.enable === true) await this.call('EnableUnitFiles', 'asbb', [[path], true, true], name);
  }

  async removeUnit(name: string): Promise<void> {
    this.assertOpen(`remove ${name}`);
    const path = this.unitPath(name);
    // Both answer NoSuchUnit when there is nothing to undo ("Unit file x does not exist.", "Unit x
    // not loaded."): removing is idempotent.
    await this.call('DisableUnitFiles', 'asb', [[name], true], name).catch(ignoreNoSuchUnit);
    await this.call('ResetFailedUnit', 's', [name], name).catch(ignoreNoSuchUnit);
    try {
      await rm(path, { force: true });
    } catch (err) {
      throw this.ioError(`Cannot delete unit file ${path}`, err);
    }
  }

  async reload(): Promise<void> {
    this.assertOpen('reload');
    // systemd answers Reload only once the reload has finished.
    await this.call('Reload', '', [], 'daemon-reload');
  }

  async startUnit(name: string): Promise<JobResult> {
    return this.runJob('StartUnit', name);
  }

  /**
   * Stops a unit. A unit systemd does not know and that is not running counts as stopped: systemd
   * answers NoSuchUnit ("Unit x not loaded."), and this resolves `done`.
   */
  async stopUnit(name: string): Promise<JobResult> {
    try {
      return await this.runJob('StopUnit', name);
    } catch (err) {
      if (isNoSuchUnit(err)) return 'done';
      throw err;
    }
  }

  async unitStatus(names: readonly string[]): Promise<UnitStatus[]> {
    this.assertOpen('read unit states');
    if (names.length === 0) return [];
    for (const name of names) parseValidUnitName(name);
    const [rows] = (await this.call('ListUnitsByNames', 'as', [[...names]], names.join(' '))) as [
      ListedUnit[],
    ];
    // One row per name, in order; by name as a fallback should systemd skip a name it rejects.
    const aligned = rows.length === names.length;
    const byName = new Map(rows.map((row) => [row[0], row]));
    return names.map((name, i) => {
      const row = aligned ? rows[i] : byName.get(name);
      if (row === undefined)
        return { name, loadState: 'not-found', activeState: 'inactive', subState: 'dead' };
      return { name, loadState: row[2], activeState: row[3], subState: row[4] };
    });
  }

  async pendingJobOf(pid: number): Promise<string | undefined> {
    this.assertOpen('read the pending job of a process');
    let unitPath: string;
    try {
      [unitPath] = (await this.call('GetUnitByPID', 'u', [pid], `pid ${pid}`)) as [string];
    } catch (err) {
      // NoUnitForPID: not in a unit (a process of a terminal, a container without systemd).
      if (err instanceof FleetError && err.code === 'SYSTEMD_FAILED') return undefined;
      throw err;
    }
    const job = (await this.property(unitPath, UNIT_INTERFACE, 'Job', `pid ${pid}`)) as [number, string];
    if (job[0] === 0) return undefined;
    return String(await this.property(job[1], 'org.freedesktop.systemd1.Job', 'JobType', `job ${job[0]}`));
  }

  /** One property of a systemd object (Properties.Get), its variant unwrapped. */
  private async property(path: string, iface: string, name: string, subject: string): Promise<unknown> {
    const [variant] = (await this.call('Get', 'ss', [iface, name], subject, {
      destination: SYSTEMD,
      path,
      interface: PROPERTIES,
    })) as [{ value: unknown }];
    return variant.value;
  }

  async subscribe(listener: (unit: string) => void): Promise<SystemdSubscription> {
    this.assertOpen('subscribe');
    this.subscribed ??= this.startSignals().catch((err: unknown) => {
      this.subscribed = undefined;
      throw err;
    });
    await this.subscribed;
    this.listeners.add(listener);
    return {
      close: () => {
        this.listeners.delete(listener);
        return Promise.resolve();
      },
    };
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.listeners.clear();
    this.failPending('the systemd manager was closed');
    this.bus.disconnect();
    return Promise.resolve();
  }

  // Internals ----------------------------------------------------------------------------------

  private unitPath(name: string): string {
    parseValidUnitName(name);
    return join(this.unitsDirectory, name);
  }

  /** Temporary file in the same directory, fsync, rename, fsync the directory (crash-safe). */
  private async writeAtomically(path: string, name: string, contents: string): Promise<void> {
    try {
      // Unchanged contents: nothing to write (systemd would see the same file anyway).
      if ((await readIfExists(path)) === contents) return;
      await mkdir(this.unitsDirectory, { recursive: true, mode: 0o755 });
      const temp = join(this.unitsDirectory, unitFileTempName(name, randomBytes(6).toString('hex')));
      try {
        const file = await open(temp, 'wx', 0o644);
        try {
          await file.writeFile(contents, 'utf8');
          // The mode given to open is masked by the umask; fleet's files are 0644 regardless.
          await file.chmod(0o644);
          await file.sync();
        } finally {
          await file.close();
        }
        await rename(temp, path);
      } catch (err) {
        await rm(temp, { force: true });
        throw err;
      }
      const dir = await open(this.unitsDirectory, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (err) {
      throw this.ioError(`Cannot write unit file ${path}`, err);
    }
  }

  private ioError(message: string, err: unknown): FleetError {
    return new FleetError('UNIT_FILE_IO_FAILED', `${message}: ${describeError(err)}`, { cause: err });
  }

  private assertOpen(what: string): void {
    if (this.closed)
      throw new FleetError('SYSTEMD_UNAVAILABLE', `Cannot ${what}: the systemd manager is closed`);
    if (this.lost !== undefined) {
      throw new FleetError(
        'SYSTEMD_UNAVAILABLE',
        `Cannot ${what}: the connection to D-Bus at ${this.address} was lost (${this.lost.message})`,
        { cause: this.lost },
      );
    }
  }

  /**
   * Starts or stops a unit with job mode `replace` and resolves with the job's result. The
   * JobRemoved match is in place since connect, and signals that arrive before the reply are
   * buffered, so neither order of reply and signal loses the result.
   */
  private async runJob(method: 'StartUnit' | 'StopUnit', name: string): Promise<JobResult> {
    this.assertOpen(`${method} ${name}`);
    parseValidUnitName(name);
    const early = new Map<string, string>();
    this.earlyJobs.add(early);
    let job: string;
    try {
      [job] = (await this.call(method, 'ss', [name, 'replace'], name)) as [string];
    } finally {
      this.earlyJobs.delete(early);
    }
    const finished = early.get(job);
    const result = finished ?? (await this.waitForJob(job, method, name));
    this.log.debug('job finished', { method, unit: name, job, result, beforeReply: finished !== undefined });
    return toJobResult(result);
  }

  private waitForJob(job: string, method: string, name: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const waiters = this.jobWaiters.get(job) ?? new Set<JobWaiter>();
      this.jobWaiters.set(job, waiters);
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        if (waiters.size === 0 && this.jobWaiters.get(job) === waiters) this.jobWaiters.delete(job);
        reject(
          new FleetError(
            'SYSTEMD_UNAVAILABLE',
            `systemd did not finish job ${job} (${method} ${name}) within ${this.jobTimeoutMs} ms`,
            { retryable: true },
          ),
        );
      }, this.jobTimeoutMs);
      const waiter: JobWaiter = {
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result);
        },
        abandon: (reason) => {
          clearTimeout(timer);
          reject(
            new FleetError(
              'SYSTEMD_UNAVAILABLE',
              `Stopped waiting for job ${job} (${method} ${name}): ${reason}`,
            ),
          );
        },
      };
      waiters.add(waiter);
    });
  }

  /** Fails every call and job still waiting, at once rather than at their timeouts. */
  private failPending(reason: string): void {
    for (const waiters of this.jobWaiters.values()) for (const waiter of waiters) waiter.abandon(reason);
    this.jobWaiters.clear();
    for (const abandon of this.pendingCalls) abandon(reason);
    this.pendingCalls.clear();
  }

  private async startSignals(): Promise<void> {
    for (const rule of SUBSCRIBE_MATCHES) await this.addMatch(rule);
    // Without a subscriber systemd sends no unit signals at all.
    await this.call('Subscribe', '', [], 'signals');
  }

  private async addMatch(rule: string): Promise<void> {
    await this.call('AddMatch', 's', [rule], 'signals', {
      destination: 'org.freedesktop.DBus',
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
    });
  }

  private onMessage(msg: Message): void {
    if (msg.type !== MessageType.SIGNAL) return;
    const body = msg.body as unknown[];
    if (msg.path === SYSTEMD_PATH && msg.interface === MANAGER) {
      if (msg.member === 'JobRemoved') {
        const [, job, unit, result] = body as [number, string, string, string];
        this.onJobRemoved(job, result);
        this.notify(unit);
      } else if (msg.member === 'UnitNew' || msg.member === 'UnitRemoved') {
        this.notify(body[0] as string);
      }
    } else if (
      msg.interface === PROPERTIES &&
      msg.member === 'PropertiesChanged' &&
      body[0] === UNIT_INTERFACE
    ) {
      const unit = unitNameFromObjectPath(msg.path);
      if (unit !== undefined) this.notify(unit);
    }
  }

  private onJobRemoved(job: string, result: string): void {
    const waiters = this.jobWaiters.get(job);
    this.jobWaiters.delete(job);
    for (const waiter of waiters ?? []) waiter.resolve(result);
    // Also for calls still waiting for their reply: one of them may be merged into this job.
    for (const early of this.earlyJobs) early.set(job, result);
  }

  private notify(unit: string): void {
    for (const listener of this.listeners) {
      try {
        listener(unit);
      } catch (err) {
        // A signal handler is a boundary: one faulty listener must not starve the others.
        this.log.warn('systemd change listener threw', { unit, error: describeError(err) });
      }
    }
  }

  private onConnectionLost(err: unknown): void {
    if (this.closed || this.lost !== undefined) return;
    this.lost = err instanceof Error ? err : new Error(String(err));
    this.log.warn('D-Bus connection lost', { address: this.address, error: this.lost.message });
    this.failPending(`the connection to D-Bus at ${this.address} was lost (${this.lost.message})`);
    const lost = this.lost;
    for (const listener of this.lostListeners.splice(0)) {
      queueMicrotask(() => {
        listener(lost);
      });
    }
  }

  onLost(listener: (error: Error) => void): void {
    const lost = this.lost;
    if (lost !== undefined && !this.closed) {
      queueMicrotask(() => {
        listener(lost);
      });
    } else if (!this.closed) this.lostListeners.push(listener);
  }

  /**
   * One method call with a timeout. Error replies become `SYSTEMD_FAILED` (or a retryable
   * `SYSTEMD_UNAVAILABLE` for bus-level failures) naming the call and its subject.
   */
  private async call(
    member: string,
    signature: string,
    body: unknown[],
    subject: string,
    target: { destination: string; path: string; interface: string } = {
      destination: SYSTEMD,
      path: SYSTEMD_PATH,
      interface: MANAGER,
    },
  ): Promise<unknown[]> {
    this.assertOpen(`call ${member} for ${subject}`);
    const what = `${member} (${subject})`;
    let timer: NodeJS.Timeout | undefined;
    let abandon: ((reason: string) => void) | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      abandon = (reason) => {
        reject(new FleetError('SYSTEMD_UNAVAILABLE', `D-Bus call ${what} abandoned: ${reason}`));
      };
      timer = setTimeout(() => {
        reject(
          new FleetError(
            'SYSTEMD_UNAVAILABLE',
            `D-Bus call ${what} got no answer within ${this.callTimeoutMs} ms`,
            {
              retryable: true,
            },
          ),
        );
      }, this.callTimeoutMs);
    });
    if (abandon !== undefined) this.pendingCalls.add(abandon);
    try {
      const reply = await Promise.race([
        this.bus.call(new Message({ ...target, member, signature, body })),
        timeout,
      ]);
      return (reply?.body ?? []) as unknown[];
    } catch (err) {
      if (err instanceof FleetError) throw err;
      if (err instanceof DBusError) {
        const unavailable = UNAVAILABLE_ERRORS.has(err.type);
        throw new FleetError(
          unavailable ? 'SYSTEMD_UNAVAILABLE' : 'SYSTEMD_FAILED',
          `systemd refused ${what}: ${err.text} (${err.type})`,
          { retryable: unavailable, cause: err },
        );
      }
      throw new FleetError('SYSTEMD_UNAVAILABLE', `D-Bus call ${what} failed: ${describeError(err)}`, {
        cause: err,
      });
    } finally {
      clearTimeout(timer);
      if (abandon !== undefined) this.pendingCalls.delete(abandon);
    }
  }
}

/** Connects and waits for the bus's Hello, or fails with SYSTEMD_UNAVAILABLE. */
async function openBus(
  busAddress: string | undefined,
  address: string,
  timeoutMs: number,
): Promise<MessageBus> {
  const unreachable = (err: unknown, retryable: boolean): FleetError =>
    new FleetError('SYSTEMD_UNAVAILABLE', `Cannot connect to D-Bus at ${address}: ${describeError(err)}`, {
      retryable,
      cause: err,
    });
  let bus: MessageBus;
  try {
    bus = busAddress === undefined ? systemBus() : sessionBus({ busAddress });
  } catch (err) {
    // A malformed address: trying again cannot help.
    throw unreachable(err, false);
  }
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      bus.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      bus.once('error', (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      });
    });
  } catch (err) {
    // The connection is abandoned; its socket may still report errors, which are expected.
    bus.on('error', () => undefined);
    bus.disconnect();
    throw unreachable(err, true);
  }
  return bus;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

function ignoreNoSuchUnit(err: unknown): undefined {
  if (isNoSuchUnit(err)) return undefined;
  throw err;
}

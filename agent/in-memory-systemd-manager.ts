/**
 * A complete `SystemdManager` in memory, for fast agent tests: the same contract as the D-Bus one
 * (spec/contracts/systemd-manager.contract.ts), with systemd's state transitions, change
 * notifications, call counts and fault controls. No file system; files live in memory.
 */
import { FleetError } from '../lib/errors.js';
import { optionValues, parseUnitFile } from '../unit/unit-file.js';
import { parseValidUnitName } from '../unit/unit-name.js';
import type { JobResult, SystemdManager, SystemdSubscription, UnitStatus } from './systemd-manager.js';

/** fleet's default `units_directory`; the fake keeps the name for messages and callers that read it. */
const DEFAULT_UNITS_DIRECTORY = '/run/fleet/units/';

/** The calls of the `SystemdManager` interface, for `callCount` and `failNext`. */
export type SystemdManagerMethod =
  | 'listUnitFiles'
  | 'readUnitFile'
  | 'installUnit'
  | 'removeUnit'
  | 'reload'
  | 'startUnit'
  | 'stopUnit'
  | 'unitStatus'
  | 'subscribe';

/** How an injected failure looks. */
export interface InjectedFailure {
  /** Default `SYSTEMD_UNAVAILABLE` (retryable), as when systemd does not answer. */
  readonly code?: 'SYSTEMD_UNAVAILABLE' | 'SYSTEMD_FAILED';
  readonly message?: string;
  /** How many calls in a row fail; default 1. */
  readonly count?: number;
}

/** What systemd made of a unit file at the last reload. */
interface Definition {
  readonly contents: string;
  /** `loaded`, or `bad-setting` for a service without ExecStart (systemd refuses those). */
  readonly loadState: 'loaded' | 'bad-setting';
  readonly unitType: string;
  readonly serviceType: string;
  readonly remainAfterExit: boolean;
  /** The first ExecStart runs `false` and its failure is not ignored with a `-` prefix. */
  readonly commandFails: boolean;
}

/** What a unit is doing. Units without an entry are inactive/dead. */
interface Runtime {
  activeState: string;
  subState: string;
  mainPid: number | undefined;
}

/** The sub-state of an active unit that is not a service. */
const ACTIVE_SUB_STATES: Readonly<Record<string, string>> = {
  socket: 'listening',
  timer: 'waiting',
  path: 'waiting',
  target: 'active',
  mount: 'mounted',
  swap: 'active',
  automount: 'waiting',
  device: 'plugged',
  scope: 'running',
  slice: 'active',
};

/** Service types whose start job is done once the process is forked, before it can fail. */
const FORK_AND_FORGET = new Set(['simple', 'exec', 'idle']);

function define(name: string, contents: string): Definition {
  const unitType = name.slice(name.lastIndexOf('.') + 1);
  const parsed = parseUnitFile(contents, name);
  const file = parsed.ok ? parsed.value : { options: [] };
  const value = (key: string): string | undefined => optionValues(file, 'Service', key).at(-1);
  const execStart = optionValues(file, 'Service', 'ExecStart').find((v) => v !== '');
  // ExecStart prefixes (systemd.service(5)): "-" ignores a failure; "@", ":", "+", "!" do not matter here.
  const prefix = /^[-@:+!]*/.exec(execStart ?? '')?.[0] ?? '';
  const program = (execStart ?? '').slice(prefix.length).trim().split(/\s+/)[0] ?? '';
  return {
    contents,
    loadState: unitType === 'service' && execStart === undefined ? 'bad-setting' : 'loaded',
    unitType,
    serviceType: value('Type') ?? 'simple',
    remainAfterExit: ['yes', 'true', 'on', '1'].includes(value('RemainAfterExit') ?? ''),
    commandFails: !prefix.includes('-') && /(^|\/)false$/.test(program),
  };
}

/**
 * The fake systemd. Like the real one it needs `reload()` before installed or removed files take
 * effect: a unit is `not-found` until its file is installed *and* reloaded (real systemd may load
 * a never-seen unit on demand; the fake takes the stricter view). A service starts and runs until
 * stopped, unless its unit says otherwise: `ExecStart=/bin/false` fails (a simple service
 * right after its start job is `done`, a oneshot with job result `failed`), a oneshot finishes
 * (`inactive/dead`, or `active/exited` with `RemainAfterExit=yes`), a service without ExecStart is
 * `bad-setting`. Every state change calls the subscribers, asynchronously, as signals would.
 *
 * Controls: `failNext(method)` (the next call fails), `failNextStart(name)`, `crashUnit(name)`
 * (`failed/failed`), `exitUnit(name)` (`inactive/dead`); and for assertions `callCount`,
 * `mainPid` (a new pid per start, so a test can prove a unit was not restarted), `isLinked`,
 * `isEnabled`.
 */
export class InMemorySystemdManager implements SystemdManager {
  readonly unitsDirectory: string;
  private readonly files = new Map<string, string>();
  private readonly links = new Set<string>();
  private readonly enabled = new Set<string>();
  private readonly definitions = new Map<string, Definition>();
  private readonly runtimes = new Map<string, Runtime>();
  private readonly calls = new Map<SystemdManagerMethod, number>();
  private readonly faults = new Map<SystemdManagerMethod, FleetError[]>();
  private readonly failingStarts = new Set<string>();
  private readonly listeners = new Set<(unit: string) => void>();
  private readonly lostListeners: ((error: Error) => void)[] = [];
  private lastPid = 1000;
  private closed = false;

  constructor(options: { readonly unitsDirectory?: string } = {}) {
    this.unitsDirectory = options.unitsDirectory ?? DEFAULT_UNITS_DIRECTORY;
  }

  // Controls -----------------------------------------------------------------------------------

  /** The next call (or `count` calls) of `method` fails; default a retryable SYSTEMD_UNAVAILABLE. */
  failNext(method: SystemdManagerMethod, failure: InjectedFailure = {}): void {
    const code = failure.code ?? 'SYSTEMD_UNAVAILABLE';
    const message = failure.message ?? `injected failure of ${method}`;
    const queue = this.faults.get(method) ?? [];
    for (let i = 0; i < (failure.count ?? 1); i++) {
      queue.push(new FleetError(code, message, { retryable: code === 'SYSTEMD_UNAVAILABLE' }));
    }
    this.faults.set(method, queue);
  }

  /** The job type `pendingJobOf` reports (undefined: fleetd is in no unit, or it has no job). */
  pendingJob: string | undefined;

  /** The next start of `name` fails: job result `failed`, unit `failed/failed`. */
  failNextStart(name: string): void {
    this.failingStarts.add(name);
  }

  /** The unit's main process dies with an error: `failed/failed`. No-op unless it is active. */
  crashUnit(name: string): void {
    if (this.runtimes.get(name)?.activeState !== 'active') return;
    this.setRuntime(name, { activeState: 'failed', subState: 'failed', mainPid: undefined });
  }

  /** The unit's main process exits cleanly: `inactive/dead`. No-op unless it is active. */
  exitUnit(name: string): void {
    if (this.runtimes.get(name)?.activeState !== 'active') return;
    this.setRuntime(name, undefined);
  }

  /** The pid of the unit's main process: a new one for every start, undefined when none runs. */
  mainPid(name: string): number | undefined {
    return this.runtimes.get(name)?.mainPid;
  }

  /** How often `method` was called (every method when omitted), failed calls included. */
  callCount(method?: SystemdManagerMethod): number {
    if (method !== undefined) return this.calls.get(method) ?? 0;
    let total = 0;
    for (const n of this.calls.values()) total += n;
    return total;
  }

  /** True while the unit's file is linked into systemd (`systemctl is-enabled`: linked-runtime). */
  isLinked(name: string): boolean {
    return this.links.has(name);
  }

  /** True while the unit is enabled at runtime (installed with `enable` and an [Install] section). */
  isEnabled(name: string): boolean {
    return this.enabled.has(name);
  }

  // SystemdManager -----------------------------------------------------------------------------

  listUnitFiles(): Promise<string[]> {
    return this.call('listUnitFiles', () => [...this.files.keys()].sort());
  }

  readUnitFile(name: string): Promise<string | undefined> {
    return this.call('readUnitFile', () => {
      parseValidUnitName(name);
      return this.files.get(name);
    });
  }

  installUnit(name: string, contents: string, options: { readonly enable?: boolean } = {}): Promise<void> {
    return this.call('installUnit', () => {
      parseValidUnitName(name);
      this.files.set(name, contents);
      this.links.add(name);
      // EnableUnitFiles on a unit without [Install] only links it.
      if (options.enable === true && /^\s*\[Install\]\s*$/m.test(contents)) this.enabled.add(name);
    });
  }

  removeUnit(name: string): Promise<void> {
    return this.call('removeUnit', () => {
      parseValidUnitName(name);
      this.links.delete(name);
      this.enabled.delete(name);
      if (this.runtimes.get(name)?.activeState === 'failed') this.setRuntime(name, undefined);
      this.files.delete(name);
    });
  }

  reload(): Promise<void> {
    return this.call('reload', () => {
      const names = new Set([...this.links, ...this.definitions.keys()]);
      for (const name of names) {
        const contents = this.links.has(name) ? this.files.get(name) : undefined;
        const before = this.definitions.get(name);
        if (contents === undefined) {
          this.definitions.delete(name);
        } else if (before?.contents !== contents) {
          this.definitions.set(name, define(name, contents));
        }
        if (before?.contents !== contents) this.notify(name);
      }
    });
  }

  startUnit(name: string): Promise<JobResult> {
    return this.call('startUnit', () => {
      parseValidUnitName(name);
      const definition = this.definitions.get(name);
      if (definition === undefined) throw refused('StartUnit', name, 'NoSuchUnit', `Unit ${name} not found.`);
      if (definition.loadState === 'bad-setting') {
        throw refused('StartUnit', name, 'BadUnitSetting', `Unit ${name} has a bad unit file setting.`);
      }
      if (this.runtimes.get(name)?.activeState === 'active') return 'done';
      return this.start(name, definition);
    });
  }

  /** Stops a unit; like the D-Bus manager, a unit systemd does not know counts as stopped. */
  stopUnit(name: string): Promise<JobResult> {
    return this.call('stopUnit', () => {
      parseValidUnitName(name);
      // Stopping leaves a failed unit failed: only reset-failed (removeUnit) clears it.
      if (this.runtimes.get(name)?.activeState === 'active') this.setRuntime(name, undefined);
      return 'done';
    });
  }

  unitStatus(names: readonly string[]): Promise<UnitStatus[]> {
    return this.call('unitStatus', () =>
      names.map((name) => {
        parseValidUnitName(name);
        const runtime = this.runtimes.get(name);
        return {
          name,
          loadState: this.definitions.get(name)?.loadState ?? 'not-found',
          activeState: runtime?.activeState ?? 'inactive',
          subState: runtime?.subState ?? 'dead',
        };
      }),
    );
  }

  subscribe(listener: (unit: string) => void): Promise<SystemdSubscription> {
    return this.call('subscribe', () => {
      this.listeners.add(listener);
      return {
        close: () => {
          this.listeners.delete(listener);
          return Promise.resolve();
        },
      };
    });
  }

  pendingJobOf(_pid: number): Promise<string | undefined> {
    return Promise.resolve(this.pendingJob);
  }

  onLost(listener: (error: Error) => void): void {
    if (!this.closed) this.lostListeners.push(listener);
  }

  /**
   * The connection to systemd breaks for good, as when the bus daemon goes away: every later
   * call fails with a non-retryable SYSTEMD_UNAVAILABLE and `onLost` listeners are told.
   */
  loseConnection(): void {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    const error = new Error('injected loss of the systemd connection');
    for (const l of this.lostListeners.splice(0)) {
      queueMicrotask(() => {
        l(error);
      });
    }
  }

  close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.lostListeners.length = 0;
    return Promise.resolve();
  }

  // Internals ----------------------------------------------------------------------------------

  /** Runs one call: counts it, applies faults, then runs `fn` after a microtask, like a round trip. */
  private async call<T>(method: SystemdManagerMethod, fn: () => T): Promise<T> {
    this.calls.set(method, (this.calls.get(method) ?? 0) + 1);
    await Promise.resolve();
    if (this.closed)
      throw new FleetError('SYSTEMD_UNAVAILABLE', `Cannot ${method}: the systemd manager is closed`);
    const fault = this.faults.get(method)?.shift();
    if (fault !== undefined) throw fault;
    return fn();
  }

  private start(name: string, definition: Definition): JobResult {
    const forced = this.failingStarts.delete(name);
    const pid = ++this.lastPid;
    if (forced) {
      this.setRuntime(name, { activeState: 'failed', subState: 'failed', mainPid: undefined });
      return 'failed';
    }
    if (definition.unitType !== 'service') {
      const subState = ACTIVE_SUB_STATES[definition.unitType] ?? 'active';
      this.setRuntime(name, { activeState: 'active', subState, mainPid: undefined });
      return 'done';
    }
    if (definition.commandFails && FORK_AND_FORGET.has(definition.serviceType)) {
      // The job is done once the process runs; it fails a moment later (a new event-loop turn).
      this.setRuntime(name, { activeState: 'active', subState: 'running', mainPid: pid });
      setImmediate(() => {
        if (!this.closed && this.runtimes.get(name)?.mainPid === pid) this.crashUnit(name);
      });
      return 'done';
    }
    if (definition.commandFails) {
      this.setRuntime(name, { activeState: 'failed', subState: 'failed', mainPid: undefined });
      return 'failed';
    }
    if (definition.serviceType === 'oneshot') {
      this.setRuntime(
        name,
        definition.remainAfterExit
          ? { activeState: 'active', subState: 'exited', mainPid: undefined }
          : undefined,
      );
      return 'done';
    }
    this.setRuntime(name, { activeState: 'active', subState: 'running', mainPid: pid });
    return 'done';
  }

  private setRuntime(name: string, runtime: Runtime | undefined): void {
    if (runtime === undefined) this.runtimes.delete(name);
    else this.runtimes.set(name, runtime);
    this.notify(name);
  }

  private notify(unit: string): void {
    for (const listener of this.listeners) {
      queueMicrotask(() => {
        // A subscription closed in the meantime gets nothing more.
        if (this.listeners.has(listener)) listener(unit);
      });
    }
  }
}

/** The error the D-Bus manager throws for the same refusal, word for word. */
function refused(method: string, name: string, error: string, text: string): FleetError {
  return new FleetError(
    'SYSTEMD_FAILED',
    `systemd refused ${method} (${name}): ${text} (org.freedesktop.systemd1.${error})`,
  );
}

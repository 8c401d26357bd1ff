import { createHash } from 'node:crypto';

import type { Clock } from '../lib/clock.js';
import { mapLimit } from '../lib/concurrency.js';
import { describeError, FleetError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { UnitRecord } from '../registry/model.js';
import { serializeUnitFile } from '../unit/serialize.js';
import { isTemplate } from '../unit/unit-name.js';
import type { AgentTask, DesiredAgentUnit } from './plan.js';
import type { SystemdManager, UnitStatus } from './systemd-manager.js';
import type { EventSink } from '../unit/cluster-events.js';

/** How many groups of systemd tasks (one unit's, or a socket's and its service's) run at once. */
const CONCURRENCY = 32;

/** Why a unit's tasks failed, and when they are tried again. */
export interface UnitFailure {
  readonly attempts: number;
  readonly error: string;
  /** Clock time of the next attempt. */
  readonly retryAt: number;
}

/** Backoff of a unit whose tasks failed: 1 s doubling to 1 min. */
const FAILURE_INITIAL_MS = 1000;
const FAILURE_MAX_MS = 60_000;

/** At most `limit` tasks at once; the others wait in order. */
class Slots {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

export interface TaskExecutorDeps {
  readonly systemd: SystemdManager;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Called with the units of a group of tasks when it ended (done or failed). */
  readonly onSettled?: (units: readonly string[]) => void;
  /** Called when a unit's tasks fail (with the failure) or succeed again (undefined). */
  readonly onFailure?: (unit: string, failure: UnitFailure | undefined) => void;
  /** The contents of a unit at a hash (the machine view's cache). */
  readonly unitRecord: (name: string, hash: string) => Promise<UnitRecord | undefined>;
  /** A unit record already read, by hash, without a registry read. */
  readonly cachedRecord: (hash: string) => UnitRecord | undefined;
  /** Where starts, stops and their results are recorded (cluster events); default nowhere. */
  readonly events?: EventSink;
  /** This machine's ID, for the events. */
  readonly machine?: string;
}

export function sha1(text: string): string {
  return createHash('sha1').update(text, 'utf8').digest('hex');
}

export function hasInstallSection(unit: UnitRecord): boolean {
  return unit.options.some((o) => o.section === 'Install');
}

/**
 * The agent's task executor: carries out a plan's tasks against systemd, and keeps what the
 * agent knows about the machine between rounds: the hash of each file in fleet's units
 * directory and the units it started (planAgent's `launched`).
 */
export class TaskExecutor {
  private readonly log: Logger;
  /** Units this agent started and has not stopped since (see planAgent). */
  readonly launched = new Set<string>();
  /** Hash of each file in the units directory, by unit name, known from our writes or reads. */
  readonly fileHashes = new Map<string, string>();
  /** Executed tasks, for tests and benchmarks. */
  tasksRun = 0;
  /** Groups of tasks running, by unit (a socket's group by the socket). */
  private readonly running = new Map<string, Promise<void>>();
  /** Units whose last group failed, backing off. */
  private readonly failures = new Map<string, UnitFailure>();
  private readonly slots = new Slots(CONCURRENCY);
  private reloadQueued: Promise<void> | undefined;
  private reloadRunning: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly deps: TaskExecutorDeps) {
    this.log = deps.logger;
  }

  /** Reads the hash of every file in the units directory not known yet; returns the names. */
  async scanFiles(): Promise<string[]> {
    const { systemd } = this.deps;
    const files = await systemd.listUnitFiles();
    for (const name of files) {
      if (!this.fileHashes.has(name)) {
        const contents = await systemd.readUnitFile(name);
        if (contents !== undefined) this.fileHashes.set(name, sha1(contents));
      }
    }
    return files;
  }

  /**
   * Stops and unloads every unit in fleet's units directory (fleet's agent Purge, when fleetd is
   * stopped): all at once (bounded), each on its own, then one daemon-reload. A unit that fails
   * is logged and the others proceed. Resolves when every stop job has ended.
   */
  async unloadAll(): Promise<void> {
    const files = await this.deps.systemd.listUnitFiles();
    let failures = 0;
    await mapLimit(files, CONCURRENCY, async (unit) => {
      try {
        await this.runTask({ kind: 'unload', unit, reason: 'fleetd is stopping' }, new Map());
      } catch {
        failures++;
      }
    });
    if (files.length > 0) {
      await this.runTask({ kind: 'reload', reason: 'unit files removed' }, new Map()).catch(() => undefined);
    }
    this.log.info('units stopped and unloaded', { units: files.length, failures });
  }

  /**
   * Starts a plan's tasks and returns at once (the reconcile loop never waits for a systemd
   * job). Tasks are grouped per unit (a socket with the service it activates is one group) and
   * each group runs on its own, in plan order (unload, load, then one shared daemon-reload, stop,
   * start), at most CONCURRENCY groups at a time: a slow or hung job of one unit delays no other
   * unit. A group still running, or backing off after a failure, is left out of later plans until
   * it settles; `onSettled` is called when a group ends (the owner plans again).
   */
  dispatch(
    planned: readonly AgentTask[],
    status: ReadonlyMap<string, UnitStatus>,
    wanted: ReadonlyMap<string, DesiredAgentUnit>,
  ): void {
    const owner = new Map<string, string>();
    for (const d of wanted.values()) if (d.activates !== undefined) owner.set(d.activates, d.name);
    const groups = new Map<string, AgentTask[]>();
    for (const task of planned) {
      if (task.kind === 'reload') continue;
      const key = owner.get(task.unit) ?? task.unit;
      const group = groups.get(key) ?? [];
      group.push(task);
      groups.set(key, group);
    }
    const now = this.deps.clock.now();
    for (const [key, tasks] of groups) {
      if (this.running.has(key)) continue;
      const failure = this.failures.get(key);
      if (failure !== undefined && failure.retryAt > now) continue;
      const onDemand = this.loadsOnDemand(tasks, status, wanted);
      const run = this.slots
        .run(() => this.runGroup(tasks, wanted, onDemand))
        .then(
          () => {
            if (this.failures.delete(key)) this.deps.onFailure?.(key, undefined);
          },
          (err: unknown) => {
            this.fail(key, err);
          },
        )
        .finally(() => {
          this.running.delete(key);
          this.deps.onSettled?.(tasks.map((t) => ('unit' in t ? t.unit : key)));
        });
      this.running.set(key, run);
    }
  }

  /** Resolves when no group of tasks runs. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running.values());
  }

  /** No group starts another step after this. */
  close(): void {
    this.closed = true;
  }

  /** The failure a unit backs off from, if any. */
  failureOf(unit: string): UnitFailure | undefined {
    return this.failures.get(unit);
  }

  private fail(key: string, err: unknown): void {
    const attempts = (this.failures.get(key)?.attempts ?? 0) + 1;
    const delayMs = Math.min(FAILURE_MAX_MS, FAILURE_INITIAL_MS * 2 ** (attempts - 1));
    const failure: UnitFailure = {
      attempts,
      error: describeError(err),
      retryAt: this.deps.clock.now() + delayMs,
    };
    this.failures.set(key, failure);
    this.log.warn('unit tasks failed; retrying with backoff', { unit: key, attempts, retryInMs: delayMs });
    this.deps.onFailure?.(key, failure);
    void this.deps.clock.sleep(delayMs).then(
      () => {
        if (!this.closed) this.deps.onSettled?.([key]);
      },
      () => undefined,
    );
  }

  private async runGroup(
    tasks: readonly AgentTask[],
    wanted: ReadonlyMap<string, DesiredAgentUnit>,
    onDemand: boolean,
  ): Promise<void> {
    const changesFiles = tasks.some((t) => t.kind === 'load' || t.kind === 'unload');
    let reloaded = !changesFiles || onDemand;
    for (const task of tasks) {
      if (this.closed) return;
      if (!reloaded && (task.kind === 'stop' || task.kind === 'start')) {
        await this.reload();
        reloaded = true;
      }
      if (onDemand && task.kind === 'start') {
        try {
          await this.runTask(task, wanted);
        } catch {
          // systemd did not load it on demand: the reload the plan had, then the start again.
          await this.reload();
          await this.runTask(task, wanted);
        }
      } else {
        await this.runTask(task, wanted);
      }
      this.tasksRun++;
    }
    if (!reloaded) await this.reload();
  }

  /**
   * One daemon-reload that starts after this call (joining one that has not started yet): the
   * files a group wrote before calling it take effect.
   */
  private reload(): Promise<void> {
    if (this.reloadQueued !== undefined) return this.reloadQueued;
    const previous = this.reloadRunning ?? Promise.resolve();
    const next: Promise<void> = previous
      .catch(() => undefined)
      .then(async () => {
        this.reloadQueued = undefined;
        this.reloadRunning = next;
        try {
          await this.runTask({ kind: 'reload', reason: 'unit files changed' }, new Map());
        } finally {
          if (this.reloadRunning === next) this.reloadRunning = undefined;
        }
      });
    this.reloadQueued = next;
    return next;
  }

  /**
   * True when the plan's daemon-reload can be left out: every file it writes is a new unit that
   * systemd has never loaded (no unload, no replace, no [Install] section to enable). systemd
   * (since v245) loads such a unit from disk when it is started, because its unit directories
   * changed since it last looked (`loadsNewUnitsOnDemand`); the reload would only re-read every
   * other unit too. Where a start then finds no unit (an older systemd), startLoadedOnDemand
   * reloads and starts again.
   */
  private loadsOnDemand(
    tasks: readonly AgentTask[],
    status: ReadonlyMap<string, UnitStatus>,
    wanted: ReadonlyMap<string, DesiredAgentUnit>,
  ): boolean {
    if (this.deps.systemd.loadsNewUnitsOnDemand !== true) return false;
    // Kept to plain services: a trigger and the unit it triggers take the reload.
    const activated = new Set([...wanted.values()].map((d) => d.activates));
    let loads = 0;
    for (const task of tasks) {
      if (task.kind === 'unload') return false;
      if (task.kind !== 'load') continue;
      loads++;
      const { unit } = task;
      if (!unit.endsWith('.service') || isTemplate(unit) || activated.has(unit)) return false;
      // A new file (not one systemd may have seen already) of a unit systemd has not loaded.
      if (this.fileHashes.has(unit) || (status.get(unit)?.loadState ?? 'not-found') !== 'not-found')
        return false;
      const record = this.deps.cachedRecord(task.hash);
      if (record === undefined || hasInstallSection(record)) return false;
    }
    return loads > 0;
  }

  private event(kind: 'started' | 'stopped' | 'failed', unit: string, message: string): void {
    this.deps.events?.record({
      kind,
      unit,
      ...(this.deps.machine === undefined ? {} : { machine: this.deps.machine }),
      message,
    });
  }

  private async runTask(task: AgentTask, wanted: ReadonlyMap<string, DesiredAgentUnit>): Promise<void> {
    const { systemd } = this.deps;
    const fields =
      'unit' in task
        ? { task: task.kind, unit: task.unit, reason: task.reason }
        : { task: task.kind, reason: task.reason };
    try {
      switch (task.kind) {
        case 'unload': {
          // systemd refuses to stop a template; its instances end with their connections.
          if (!isTemplate(task.unit)) await systemd.stopUnit(task.unit);
          await systemd.removeUnit(task.unit);
          this.event('stopped', task.unit, `stopped and unloaded: ${task.reason}`);
          this.fileHashes.delete(task.unit);
          this.launched.delete(task.unit);
          break;
        }
        case 'load': {
          const d = wanted.get(task.unit);
          const unit = d === undefined ? undefined : await this.deps.unitRecord(task.unit, task.hash);
          if (unit === undefined) {
            throw new FleetError(
              'INTERNAL',
              `contents of ${task.unit} (hash ${task.hash}) are not in the registry`,
              {
                retryable: true,
              },
            );
          }
          const contents = serializeUnitFile(unit.options.map((o) => ({ ...o, line: 0 })));
          await systemd.installUnit(task.unit, contents, { enable: hasInstallSection(unit) });
          this.fileHashes.set(task.unit, sha1(contents));
          break;
        }
        case 'reload':
          await systemd.reload();
          break;
        case 'stop':
          await systemd.stopUnit(task.unit);
          this.launched.delete(task.unit);
          this.event('stopped', task.unit, `stopped: ${task.reason}`);
          break;
        case 'start': {
          const result = await systemd.startUnit(task.unit);
          // Remember it whatever the result: a unit that fails to start is reported failed and
          // not started again in a loop (systemd's Restart= governs retries).
          this.launched.add(task.unit);
          if (result !== 'done') {
            this.log.warn('start job did not succeed', { ...fields, result });
            this.event('failed', task.unit, `start job ended with systemd result ${result}: ${task.reason}`);
          } else this.event('started', task.unit, `started: ${task.reason}`);
          break;
        }
      }
      this.log.info('task done', fields);
    } catch (err) {
      this.log.warn('task failed', { ...fields, error: describeError(err) });
      throw err;
    }
  }
}

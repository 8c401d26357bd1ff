import { createHash } from 'node:crypto';

import { mapLimit } from '../lib/concurrency.js';
import { describeError, FleetError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { UnitRecord } from '../registry/model.js';
import { serializeUnitFile } from '../unit/serialize.js';
import { isTemplate } from '../unit/unit-name.js';
import type { AgentTask, DesiredAgentUnit } from './plan.js';
import type { SystemdManager, UnitStatus } from './systemd-manager.js';

/** How many systemd tasks of one kind the executor runs at once. */
const CONCURRENCY = 32;

export interface TaskExecutorDeps {
  readonly systemd: SystemdManager;
  readonly logger: Logger;
  /** The contents of a unit at a hash (the machine view's cache). */
  readonly unitRecord: (name: string, hash: string) => Promise<UnitRecord | undefined>;
  /** A unit record already read, by hash, without a registry read. */
  readonly cachedRecord: (hash: string) => UnitRecord | undefined;
}

export function sha1(text: string): string {
  return createHash('sha1').update(text, 'utf8').digest('hex');
}

export function hasInstallSection(unit: UnitRecord): boolean {
  return unit.options.some((o) => o.section === 'Install');
}

/** Consecutive tasks of the same kind (planAgent sorts them by kind). */
function groupByKind(tasks: readonly AgentTask[]): AgentTask[][] {
  const groups: AgentTask[][] = [];
  for (const task of tasks) {
    const last = groups.at(-1);
    if (last?.[0]?.kind === task.kind) last.push(task);
    else groups.push([task]);
  }
  return groups;
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
   * Runs a plan. Tasks of one kind run concurrently (systemd takes jobs in parallel), kinds in
   * plan order: unload, load, reload, stop, start. A failure ends the round after its kind (as
   * fleet did).
   */
  async run(
    planned: readonly AgentTask[],
    status: ReadonlyMap<string, UnitStatus>,
    wanted: ReadonlyMap<string, DesiredAgentUnit>,
    signal: AbortSignal,
  ): Promise<void> {
    const onDemand = this.loadsOnDemand(planned, status, wanted);
    const tasks = onDemand ? planned.filter((t) => t.kind !== 'reload') : planned;
    for (const group of groupByKind(tasks)) {
      if (signal.aborted) return;
      if (onDemand && group[0]?.kind === 'start') {
        await this.startLoadedOnDemand(group, wanted);
        continue;
      }
      await mapLimit(group, CONCURRENCY, async (task) => {
        await this.runTask(task, wanted);
        this.tasksRun++;
      });
    }
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
    // Kept to plain services: a socket and the service it activates take the reload.
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

  /** Starts freshly written units without a daemon-reload; see loadsOnDemand. */
  private async startLoadedOnDemand(
    group: readonly AgentTask[],
    wanted: ReadonlyMap<string, DesiredAgentUnit>,
  ): Promise<void> {
    const failed: AgentTask[] = [];
    await mapLimit(group, CONCURRENCY, async (task) => {
      try {
        await this.runTask(task, wanted);
        this.tasksRun++;
      } catch {
        failed.push(task);
      }
    });
    if (failed.length === 0) return;
    // systemd did not load them on demand: the reload the plan had, then the starts again.
    await this.runTask({ kind: 'reload', reason: 'new units not loaded on demand' }, wanted);
    await mapLimit(failed, CONCURRENCY, async (task) => {
      await this.runTask(task, wanted);
      this.tasksRun++;
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
          break;
        case 'start': {
          const result = await systemd.startUnit(task.unit);
          // Remember it whatever the result: a unit that fails to start is reported failed and
          // not started again in a loop (systemd's Restart= governs retries).
          this.launched.add(task.unit);
          if (result !== 'done') this.log.warn('start job did not succeed', { ...fields, result });
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

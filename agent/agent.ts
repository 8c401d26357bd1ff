/* eslint-disable max-lines -- the agent is being split along its jobs (presence, view, executor, publisher). */
import { createHash } from 'node:crypto';

import { Backoff } from '../lib/backoff.js';
import type { Clock } from '../lib/clock.js';
import { describeError, FleetError, isFleetError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { ReconcileLoop } from '../lib/reconcile-loop.js';
import type { MachineRecord, Placement, StoredUnit, UnitRecord, UnitStateRecord } from '../registry/model.js';
import type {
  GlobalUnitStore,
  MachinePresence,
  MachineStore,
  ScheduleStore,
  Subscription,
  UnitStore,
} from '../registry/registry.js';
import { serializeUnitFile } from '../unit/serialize.js';
import { activatedServiceOf } from '../unit/socket-activation.js';
import { isTemplate } from '../unit/unit-name.js';
import {
  desiredAgentUnits,
  planAgent,
  type AgentTask,
  type CandidateUnit,
  type DesiredAgentUnit,
  type ObservedAgentUnit,
} from './plan.js';
import type { SystemdManager, SystemdSubscription, UnitStatus } from './systemd-manager.js';
import { mapLimit } from '../lib/concurrency.js';

/** The registry roles the agent uses: its own schedule, global units, unit contents, presence. */
export type AgentRegistry = Pick<UnitStore, 'getUnit'> & GlobalUnitStore & ScheduleStore & MachineStore;

export interface AgentConfig {
  /** Lease TTL of this machine's presence and unit states (fleet's agent_ttl). */
  readonly ttlSeconds: number;
  /** Safety-net period of the full reconcile; events drive it otherwise. */
  readonly reconcileIntervalMs: number;
  readonly publicIp: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly version: string;
  /**
   * The kernel boot ID (readBootId), announced with the machine so that a restarted fleetd on
   * the same boot and address takes the presence over instead of being refused as a duplicate.
   */
  readonly bootId?: string;
}

export interface AgentDeps {
  readonly machineId: string;
  readonly registry: AgentRegistry;
  readonly systemd: SystemdManager;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly config: AgentConfig;
}

/** How many unit reads or systemd tasks of one kind an agent runs at once. */
const CONCURRENCY = 32;

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
 * Retry delays of the agent's loops after a failure: 250 ms doubling to the interval, jittered.
 * A failed run is most often etcd slow or away; a cluster's agents all fail together then, and
 * retrying sooner (every 100 ms, say) from every machine at once only deepens etcd's overload.
 */
function retryBackoff(intervalMs: number): Backoff {
  return new Backoff({ initialMs: Math.min(250, intervalMs), maxMs: intervalMs });
}

function sha1(text: string): string {
  return createHash('sha1').update(text, 'utf8').digest('hex');
}

function hasInstallSection(unit: UnitRecord): boolean {
  return unit.options.some((o) => o.section === 'Install');
}

/** A candidate for this machine from a unit record, with the service it activates if a socket. */
function candidate(
  unit: UnitRecord,
  hash: string,
  desiredState: CandidateUnit['desiredState'],
): CandidateUnit {
  const activates = activatedServiceOf(unit.name, unit.options);
  return {
    name: unit.name,
    hash,
    desiredState,
    fleet: unit.fleet,
    ...(activates === undefined ? {} : { activates }),
  };
}

function sameState(a: UnitStateRecord | undefined, b: UnitStateRecord): boolean {
  return (
    a !== undefined &&
    a.hash === b.hash &&
    a.loadState === b.loadState &&
    a.activeState === b.activeState &&
    a.subState === b.subState &&
    a.launched === b.launched
  );
}

/**
 * The agent: makes this machine's systemd run what the schedule says, and reports what systemd
 * does. It watches only its own schedule (`schedule/<machine>/`) and the global units; systemd's
 * signals tell it when a unit's state changes. No polling: the periodic run is a safety net.
 *
 * Shutdown policy (SIGTERM): the agent stops reconciling and leaves every unit running; its
 * presence stays until the lease runs out (agent_ttl). A fleetd that starts again within that time
 * takes the presence over (same machine ID, same boot and address) and adopts the running units
 * untouched. One that does not come back is declared dead by the lease, and the engine moves its
 * units. Losing etcd never stops units either.
 */
export class Agent {
  private readonly log: Logger;
  private presence: MachinePresence | undefined;
  private loop: ReconcileLoop | undefined;
  private publisher: ReconcileLoop | undefined;
  private subscriptions: Subscription[] = [];
  private systemdSubscription: SystemdSubscription | undefined;
  /** Units this agent started and has not stopped since (see planAgent). */
  private readonly launched = new Set<string>();
  /** Hash of each file in the units directory, by unit name, known from our writes or reads. */
  private readonly fileHashes = new Map<string, string>();
  /** Unit records by hash, so a unit's contents are read once. */
  private readonly records = new Map<string, UnitRecord>();
  private globals: StoredUnit[] = [];
  private globalsDirty = true;
  private scheduleCache: Placement[] = [];
  private scheduleDirty = true;
  /** What we published last per unit, to publish only changes. */
  private readonly published = new Map<string, UnitStateRecord>();
  /** Units whose state must be looked at again (signals, tasks). */
  private readonly stateDirty = new Set<string>();
  /** Units fleet owns on this machine: desired here or with a file here. */
  private owned = new Set<string>();
  private closed = false;
  /** True while a reconcile runs (it publishes the states of its units when done). */
  private reconciling = false;
  /** Completed reconcile rounds and executed tasks, for tests and benchmarks. */
  rounds = 0;
  tasksRun = 0;

  constructor(private readonly deps: AgentDeps) {
    this.log = deps.logger.child({ component: 'agent', machine: deps.machineId });
  }

  get machineId(): string {
    return this.deps.machineId;
  }

  /** True while this machine's presence is announced and alive (false before start). */
  get present(): boolean {
    return this.presence !== undefined && !this.presence.lost;
  }

  /**
   * Announces the machine and starts following its schedule. Fails with MACHINE_ID_IN_USE when
   * another live fleetd holds this machine ID; retries while the registry is unreachable.
   */
  async start(signal?: AbortSignal): Promise<void> {
    const { registry, systemd, clock, config } = this.deps;
    const backoff = new Backoff({ initialMs: 200, maxMs: 10_000 });
    for (;;) {
      try {
        this.presence = await registry.announceMachine(this.record(), config.ttlSeconds);
        break;
      } catch (err) {
        if (!isFleetError(err) || !err.retryable || signal?.aborted === true) throw err;
        const delay = backoff.next();
        this.log.warn('cannot announce machine; retrying', { error: describeError(err), retryInMs: delay });
        await clock.sleep(delay, signal);
      }
    }
    this.presence.onLost(() => {
      if (!this.closed) this.onPresenceLost();
    });
    this.log.info('machine announced', { publicIp: config.publicIp, ttlSeconds: config.ttlSeconds });

    for (const name of await systemd.listUnitFiles()) {
      const contents = await systemd.readUnitFile(name);
      if (contents !== undefined) this.fileHashes.set(name, sha1(contents));
    }

    const loop = new ReconcileLoop({
      name: 'agent',
      intervalMs: config.reconcileIntervalMs,
      clock,
      logger: this.log,
      backoff: retryBackoff(config.reconcileIntervalMs),
      reconcile: (s) => this.reconcile(s),
    });
    const publishIntervalMs = Math.max(1000, (config.ttlSeconds * 1000) / 2);
    const publisher = new ReconcileLoop({
      name: 'unit-state-publisher',
      intervalMs: publishIntervalMs,
      clock,
      logger: this.log,
      backoff: retryBackoff(publishIntervalMs),
      reconcile: () => this.publishStates(),
    });
    this.loop = loop;
    this.publisher = publisher;
    this.systemdSubscription = await systemd.subscribe((unit) => {
      if (!this.owned.has(unit)) return;
      this.stateDirty.add(unit);
      // During a reconcile its own loads and starts signal every step (loaded, activating,
      // active): the run triggers one publish when done, so only the outcome is published.
      if (!this.reconciling) publisher.trigger();
    });
    this.subscriptions = [
      await registry.watchMachineSchedule(this.deps.machineId, () => {
        this.scheduleDirty = true;
        loop.trigger();
      }),
      await registry.watchGlobalUnits(() => {
        this.globalsDirty = true;
        loop.trigger();
      }),
    ];
    loop.start();
    publisher.start();
  }

  /** Resolves when no reconcile or publish is in flight or queued. */
  async idle(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      await this.loop?.idle();
      await this.publisher?.idle();
    }
  }

  /** Requests a reconcile now. */
  trigger(): void {
    this.scheduleDirty = true;
    this.globalsDirty = true;
    this.loop?.trigger();
  }

  /**
   * Stops the agent without touching any unit (see the shutdown policy above). The presence is
   * left to its lease unless `release` is set, which revokes it at once: the machine leaves the
   * cluster and the engine moves its units.
   */
  async close(options: { readonly release?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.loop?.close();
    await this.publisher?.close();
    await Promise.all(this.subscriptions.map((s) => s.close().catch(() => undefined)));
    await this.systemdSubscription?.close().catch(() => undefined);
    if (options.release === true) await this.presence?.close().catch(() => undefined);
  }

  private record(): MachineRecord {
    const { config } = this.deps;
    return {
      id: this.deps.machineId,
      publicIp: config.publicIp,
      metadata: config.metadata,
      version: config.version,
      ...(config.bootId === undefined || config.bootId === '' ? {} : { bootId: config.bootId }),
    };
  }

  private onPresenceLost(): void {
    // The lease expired (etcd unreachable for longer than agent_ttl): the engine has moved our
    // units away. Units keep running until a reconcile against a reachable registry says
    // otherwise; announce again so this machine rejoins.
    this.log.warn('machine presence lost; announcing again');
    void this.reannounce();
  }

  private async reannounce(): Promise<void> {
    // Retry often: after an etcd outage the old presence lease lives one more TTL (etcd renews
    // leases when it comes back), and taking it over within that time keeps the machine listed,
    // so the engine moves nothing.
    const backoff = new Backoff({
      initialMs: 200,
      maxMs: Math.max(250, (this.deps.config.ttlSeconds * 1000) / 4),
    });
    while (!this.closed) {
      try {
        const presence = await this.deps.registry.announceMachine(this.record(), this.deps.config.ttlSeconds);
        this.presence = presence;
        this.published.clear();
        for (const u of this.owned) this.stateDirty.add(u);
        presence.onLost(() => {
          if (!this.closed) this.onPresenceLost();
        });
        this.log.info('machine announced again');
        this.trigger();
        this.publisher?.trigger();
        return;
      } catch (err) {
        const delay = backoff.next();
        this.log.warn('cannot announce machine; retrying', { error: describeError(err), retryInMs: delay });
        await this.deps.clock.sleep(delay).catch(() => undefined);
      }
    }
  }

  private async unitRecord(name: string, hash: string): Promise<UnitRecord | undefined> {
    const cached = this.records.get(hash);
    if (cached !== undefined && cached.name === name) return cached;
    const stored = await this.deps.registry.getUnit(name);
    if (stored === undefined) return undefined;
    this.records.set(stored.unit.hash, stored.unit);
    return stored.unit.hash === hash ? stored.unit : undefined;
  }

  /** One reconcile: what should run here vs what does, then the tasks in order. */
  private async reconcile(signal: AbortSignal): Promise<void> {
    this.reconciling = true;
    try {
      await this.reconcileOnce(signal);
    } finally {
      this.reconciling = false;
      // Whatever systemd signalled meanwhile (also after a failed or aborted run).
      if (this.stateDirty.size > 0) this.publisher?.trigger();
    }
  }

  private async reconcileOnce(signal: AbortSignal): Promise<void> {
    const { registry, systemd } = this.deps;
    if (this.scheduleDirty) {
      this.scheduleDirty = false;
      try {
        this.scheduleCache = await registry.machineSchedule(this.deps.machineId);
      } catch (err) {
        this.scheduleDirty = true;
        throw err;
      }
    }
    if (this.globalsDirty) {
      this.globalsDirty = false;
      try {
        this.globals = await registry.listGlobalUnits();
      } catch (err) {
        this.globalsDirty = true;
        throw err;
      }
      for (const g of this.globals) this.records.set(g.unit.hash, g.unit);
    }

    const scheduled: CandidateUnit[] = [];
    // Contents are read once per hash; new ones concurrently (one request each).
    const records = await mapLimit(this.scheduleCache, CONCURRENCY, (p) => this.unitRecord(p.unit, p.hash));
    this.scheduleCache.forEach((p, i) => {
      const unit = records[i];
      // A placement whose contents we cannot read yet (a replace racing the schedule) waits.
      if (unit !== undefined) scheduled.push(candidate(unit, p.hash, p.desiredState));
    });
    const globals = this.globals.map((g) => candidate(g.unit, g.unit.hash, g.desiredState));
    const desired = desiredAgentUnits(scheduled, globals, this.deps.config.metadata);

    const files = await systemd.listUnitFiles();
    for (const name of files) {
      if (!this.fileHashes.has(name)) {
        const contents = await systemd.readUnitFile(name);
        if (contents !== undefined) this.fileHashes.set(name, sha1(contents));
      }
    }
    const names = [...new Set([...files, ...desired.map((d) => d.name)])].sort();
    // systemd refuses to report on a template ("Unit name foo@.service is missing the instance
    // name") and would fail the whole call: templates are not asked about.
    const known = names.filter((n) => !isTemplate(n));
    const statuses = known.length > 0 ? await systemd.unitStatus(known) : [];
    const statusByName = new Map(statuses.map((s) => [s.name, s]));
    const observed: ObservedAgentUnit[] = files.map((name) => ({
      name,
      fileHash: this.fileHashes.get(name),
      loadState: statusByName.get(name)?.loadState ?? 'not-found',
      activeState: statusByName.get(name)?.activeState ?? 'inactive',
    }));
    this.owned = new Set(names);

    const planned = planAgent(desired, observed, this.launched);
    const wanted = new Map(desired.map((d) => [d.name, d]));
    const onDemand = this.loadsOnDemand(planned, statusByName, wanted);
    const tasks = onDemand ? planned.filter((t) => t.kind !== 'reload') : planned;
    // Tasks of one kind run concurrently (systemd takes jobs in parallel), kinds in plan order:
    // unload, load, reload, stop, start. A failure ends the round after its kind (as fleet did).
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
    // Forget what we started but no longer own; remember running units we adopted.
    for (const name of this.launched) if (!wanted.has(name)) this.launched.delete(name);
    for (const d of desired) {
      const s = statusByName.get(d.name);
      if (d.desiredState === 'launched' && s !== undefined && s.activeState === 'active')
        this.launched.add(d.name);
    }
    for (const name of names) this.stateDirty.add(name);
    this.rounds++;
    this.publisher?.trigger();
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
      const record = this.records.get(task.hash);
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
          const unit = d === undefined ? undefined : await this.unitRecord(task.unit, task.hash);
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

  /** Publishes the state of every unit marked dirty, when it changed. */
  private async publishStates(): Promise<void> {
    const presence = this.presence;
    if (presence === undefined || presence.lost) return;
    const dirty = [...this.stateDirty].sort();
    this.stateDirty.clear();
    // Units no longer owned lose their state record.
    for (const name of [...this.published.keys()]) {
      if (!this.owned.has(name)) {
        await presence.removeUnitState(name);
        this.published.delete(name);
      }
    }
    // A template has no state in systemd (its instances do): nothing to publish for it.
    const toRead = dirty.filter((n) => this.owned.has(n) && !isTemplate(n));
    if (toRead.length === 0) return;
    let statuses: UnitStatus[];
    try {
      statuses = await this.deps.systemd.unitStatus(toRead);
    } catch (err) {
      for (const n of toRead) this.stateDirty.add(n);
      throw err;
    }
    // One request per changed unit, concurrently: a wave of starts is reported at once.
    await mapLimit(statuses, CONCURRENCY, async (s) => {
      const hash = this.fileHashes.get(s.name);
      if (hash === undefined) {
        // Not loaded (yet, or any more): nothing true to report.
        if (this.published.has(s.name)) {
          await presence.removeUnitState(s.name);
          this.published.delete(s.name);
        }
        return;
      }
      const record: UnitStateRecord = {
        unit: s.name,
        machine: this.deps.machineId,
        hash,
        loadState: s.loadState,
        activeState: s.activeState,
        subState: s.subState,
        launched: this.launched.has(s.name),
        updatedAt: this.deps.clock.now(),
      };
      if (sameState(this.published.get(s.name), record)) return;
      try {
        await presence.publishUnitState(record);
        // Announced again meanwhile: the key died with the old lease (or is about to), and the
        // new presence has forgotten what was published; it must be published again.
        if (this.presence === presence) this.published.set(s.name, record);
      } catch (err) {
        this.stateDirty.add(s.name);
        throw err;
      }
    });
  }
}

import { Backoff } from '../lib/backoff.js';
import type { Clock } from '../lib/clock.js';
import { describeError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { ReconcileLoop } from '../lib/reconcile-loop.js';
import type { MachineRecord } from '../registry/model.js';
import type { MachineStore } from '../registry/registry.js';
import { isTemplate } from '../unit/unit-name.js';
import { MachineView, type MachineViewRegistry } from './machine-view.js';
import { planAgent, type ObservedAgentUnit } from './plan.js';
import { AgentPresence } from './presence.js';
import type { SystemdManager, SystemdSubscription } from './systemd-manager.js';
import { TaskExecutor } from './task-executor.js';
import { UnitStatePublisher } from './unit-state-publisher.js';
import type { MetricsHooks } from '../lib/metrics.js';
import type { EventSink } from '../unit/cluster-events.js';

/** The registry roles the agent uses: its own schedule, global units, unit contents, presence. */
export type AgentRegistry = MachineViewRegistry & MachineStore;

export interface AgentConfig {
  /** Lease TTL of this machine's presence and unit states (fleet's agent_ttl). */
  readonly ttlSeconds: number;
  /** Safety-net period of the full reconcile; events drive it otherwise. */
  readonly reconcileIntervalMs: number;
  /**
   * Period of the safety-net re-read of the schedule and global units from etcd (the watches
   * drive it otherwise); default 12 reconcile intervals.
   */
  readonly refreshIntervalMs?: number;
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
  /** Where the agent records what it does and sees (cluster events); default nowhere. */
  readonly events?: EventSink;
  /** Told of each reconcile (lib/metrics.ts); default none. */
  readonly metrics?: MetricsHooks;
}

/**
 * Retry delays of the agent's loops after a failure: 250 ms doubling to the interval, jittered.
 * A failed run is most often etcd slow or away; a cluster's agents all fail together then, and
 * retrying sooner (every 100 ms, say) from every machine at once only deepens etcd's overload.
 */
function retryBackoff(intervalMs: number): Backoff {
  return new Backoff({ initialMs: Math.min(250, intervalMs), maxMs: intervalMs });
}

/**
 * The agent: makes this machine's systemd run what the schedule says, and reports what systemd
 * does. Four parts, as fleet's agent had:
 *
 * - the presence (presence.ts): announces the machine, takes a previous fleetd's presence over,
 *   announces again after a loss;
 * - the machine view (machine-view.ts): this machine's schedule and the global units, watched,
 *   cached, and re-read periodically as the safety net;
 * - the task executor (task-executor.ts): carries out the reconcile plan (plan.ts) on systemd;
 * - the unit-state publisher (unit-state-publisher.ts): reports what systemd does.
 *
 * systemd's signals tell it when a unit's state changes. No polling: the periodic run is a
 * safety net.
 *
 * Shutdown policy (fleetd/shutdown-mode.ts): on a restart of fleetd the agent stops reconciling
 * and leaves every unit running; its presence stays until the lease runs out (agent_ttl), and a
 * fleetd that starts again within that time takes it over (same machine ID, same boot and
 * address) and adopts the running units untouched. On a stop it stops and unloads every unit,
 * then revokes the presence so the engine moves the units at once. Losing etcd never stops units.
 */
export class Agent {
  private readonly log: Logger;
  private readonly presenceKeeper: AgentPresence;
  private readonly view: MachineView;
  private readonly executor: TaskExecutor;
  private readonly publisher: UnitStatePublisher;
  private loop: ReconcileLoop | undefined;
  private systemdSubscription: SystemdSubscription | undefined;
  private closed = false;
  /** True while a reconcile runs (it publishes the states of its units when done). */
  private reconciling = false;
  /** Completed reconcile rounds, for tests and benchmarks. */
  rounds = 0;

  constructor(private readonly deps: AgentDeps) {
    this.log = deps.logger.child({ component: 'agent', machine: deps.machineId });
    const { config } = deps;
    this.presenceKeeper = new AgentPresence({
      registry: deps.registry,
      clock: deps.clock,
      logger: this.log,
      record: () => this.record(),
      ttlSeconds: config.ttlSeconds,
      onReannounced: () => {
        this.publisher.republishAll();
        this.trigger();
      },
    });
    this.view = new MachineView({
      machineId: deps.machineId,
      registry: deps.registry,
      clock: deps.clock,
      metadata: config.metadata,
      refreshIntervalMs: config.refreshIntervalMs ?? 12 * config.reconcileIntervalMs,
      onChange: () => this.loop?.trigger(),
    });
    this.executor = new TaskExecutor({
      systemd: deps.systemd,
      logger: this.log,
      clock: deps.clock,
      unitRecord: (name, hash) => this.view.unitRecord(name, hash),
      cachedRecord: (hash) => this.view.cachedRecord(hash),
      onSettled: (units) => {
        this.publisher.markDirty(units);
        this.publisher.trigger();
        this.loop?.trigger();
      },
      ...(deps.events === undefined ? {} : { events: deps.events, machine: deps.machineId }),
    });
    const publishIntervalMs = Math.max(1000, (config.ttlSeconds * 1000) / 2);
    this.publisher = new UnitStatePublisher({
      machineId: deps.machineId,
      systemd: deps.systemd,
      clock: deps.clock,
      logger: this.log,
      presence: () => this.presenceKeeper.presence,
      fileHash: (unit) => this.executor.fileHashes.get(unit),
      launched: (unit) => this.executor.launched.has(unit),
      intervalMs: publishIntervalMs,
      backoff: retryBackoff(publishIntervalMs),
    });
  }

  get machineId(): string {
    return this.deps.machineId;
  }

  /** True while this machine's presence is announced and alive (false before start). */
  get present(): boolean {
    return this.presenceKeeper.alive;
  }

  /** Executed tasks, for tests and benchmarks. */
  get tasksRun(): number {
    return this.executor.tasksRun;
  }

  /**
   * Announces the machine and starts following its schedule. Fails with MACHINE_ID_IN_USE when
   * another live fleetd holds this machine ID; retries while the registry is unreachable.
   */
  async start(signal?: AbortSignal): Promise<void> {
    const { systemd, clock, config } = this.deps;
    await this.presenceKeeper.announce(signal);
    this.log.info('machine announced', { publicIp: config.publicIp, ttlSeconds: config.ttlSeconds });

    await this.executor.scanFiles();

    const loop = new ReconcileLoop({
      name: 'agent',
      intervalMs: config.reconcileIntervalMs,
      clock,
      logger: this.log,
      backoff: retryBackoff(config.reconcileIntervalMs),
      reconcile: (s) => this.reconcile(s),
      onRunEnd: (ok, ms) => {
        this.deps.metrics?.reconciled('agent', ok, ms / 1000);
      },
    });
    this.loop = loop;
    const publisher = this.publisher;
    this.systemdSubscription = await systemd.subscribe((unit) => {
      if (!publisher.owns(unit)) return;
      publisher.markDirty([unit]);
      // During a reconcile its own loads and starts signal every step (loaded, activating,
      // active): the run triggers one publish when done, so only the outcome is published.
      if (!this.reconciling) publisher.trigger();
    });
    await this.view.watch();
    loop.start();
    publisher.start();
  }

  /** Resolves when no reconcile or publish is in flight or queued. */
  async idle(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      await this.loop?.idle();
      await this.executor.idle();
      await this.publisher.idle();
    }
  }

  /** Requests a reconcile now, with a fresh read of the registry. */
  trigger(): void {
    this.view.invalidate();
    this.loop?.trigger();
  }

  /**
   * Stops the agent. By default without touching any unit, the presence left to its lease (a
   * restart, see the shutdown policy above). With `release`, the presence is revoked at once: the
   * machine leaves the cluster and the engine moves its units. With `stopUnits` (fleetd stopped),
   * every unit fleet runs here is stopped and unloaded first, and only then is the presence
   * revoked (`release` implied): the engine starts a unit elsewhere only once it stopped here.
   */
  async close(options: { readonly release?: boolean; readonly stopUnits?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.presenceKeeper.close();
    this.executor.close();
    await this.loop?.close();
    await this.publisher.close();
    await this.view.close();
    await this.systemdSubscription?.close().catch(() => undefined);
    if (options.stopUnits === true) {
      await this.executor.unloadAll().catch((err: unknown) => {
        this.log.warn('cannot stop every unit', { error: describeError(err) });
      });
    }
    if (options.release === true || options.stopUnits === true) {
      this.deps.events?.record({
        kind: 'machine-left',
        machine: this.deps.machineId,
        message: `machine ${this.deps.machineId} left the cluster (fleetd stopped and withdrew its presence)`,
      });
      await this.presenceKeeper.release();
      this.log.info('machine presence revoked: the machine left the cluster');
    }
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

  /** One reconcile: what should run here vs what does, then the tasks in order. */
  private async reconcile(signal: AbortSignal): Promise<void> {
    this.reconciling = true;
    try {
      await this.reconcileOnce(signal);
    } finally {
      this.reconciling = false;
      // Whatever systemd signalled meanwhile (also after a failed or aborted run).
      if (this.publisher.hasDirty) this.publisher.trigger();
    }
  }

  private async reconcileOnce(signal: AbortSignal): Promise<void> {
    const { systemd } = this.deps;
    const { desired, wanted } = await this.view.read();

    const files = await this.executor.scanFiles();
    const names = [...new Set([...files, ...desired.map((d) => d.name)])].sort();
    // systemd refuses to report on a template ("Unit name foo@.service is missing the instance
    // name") and would fail the whole call: templates are not asked about.
    const known = names.filter((n) => !isTemplate(n));
    const statuses = known.length > 0 ? await systemd.unitStatus(known) : [];
    const statusByName = new Map(statuses.map((s) => [s.name, s]));
    const observed: ObservedAgentUnit[] = files.map((name) => ({
      name,
      fileHash: this.executor.fileHashes.get(name),
      loadState: statusByName.get(name)?.loadState ?? 'not-found',
      activeState: statusByName.get(name)?.activeState ?? 'inactive',
    }));
    this.publisher.setOwned(new Set(names));

    const launched = this.executor.launched;
    const planned = planAgent(desired, observed, launched);
    if (signal.aborted) return;
    this.executor.dispatch(planned, statusByName, wanted);
    // Forget what we started but no longer own; remember running units we adopted.
    for (const name of launched) if (!wanted.has(name)) launched.delete(name);
    for (const d of desired) {
      const s = statusByName.get(d.name);
      if (d.desiredState === 'launched' && s !== undefined && s.activeState === 'active') {
        if (!launched.has(d.name)) {
          // Running before this agent started it: a restarted fleetd takes it over untouched.
          this.deps.events?.record({
            kind: 'adopted',
            unit: d.name,
            machine: this.deps.machineId,
            message: 'already running here; adopted without a restart',
          });
        }
        launched.add(d.name);
      }
    }
    this.publisher.markDirty(names);
    this.rounds++;
    this.publisher.trigger();
  }
}

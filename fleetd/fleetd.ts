/* eslint-disable max-lines -- the composition of start, reload and stop, which share one queue and one component stack. */
import type { SystemdManager } from '../agent/systemd-manager.js';
import { UnitDropWatcher } from '../agent/unit-drop-watcher.js';
import { unitOutputHandler } from '../agent/unit-output.js';
import type { Clock } from '../lib/clock.js';
import { FleetError, describeError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Subscription } from '../registry/registry.js';
import { diffConfig, type ConfigChange, type FleetdConfig } from './config.js';
import { formatGoDuration } from './config-values.js';
import type {
  FleetdAgent,
  FleetdApi,
  FleetdComponents,
  FleetdEngine,
  FleetdRegistry,
  FleetdSettings,
  FleetdUnitDropWatcher,
} from './fleetd-components.js';
import { EventRecorder } from '../registry/event-recorder.js';
import { connectSystemd, startAgent } from './fleetd-start.js';
import { decideShutdown, type ShutdownMode } from './shutdown-mode.js';
import { meteredSystemd } from './metered-systemd.js';
import { FleetMetrics } from './metrics.js';
import { MetricsListener } from './metrics-listener.js';

/**
 * The daemon: builds and runs one machine's fleet-ts components from a configuration, in this
 * order, and closes them in the reverse order:
 *
 * 1. the etcd registry (it connects lazily and retries: etcd being down at start is not fatal);
 * 2. the systemd manager on D-Bus;
 * 3. the HTTP API on the unix socket (and TCP), answering 503 until the machine is announced;
 * 4. the agent: announces the machine (waiting for etcd as long as it takes) and follows its
 *    schedule;
 * 5. the unit drop-folder watcher, unless unit_drop_dir is empty: submits, replaces and
 *    destroys units as files come, change and go in that folder;
 * 6. the engine, unless disable_engine: campaigns for leadership and schedules while it leads.
 *
 * Stopping follows the shutdown policy (shutdown-mode.ts): the engine resigns (another takes over
 * at once), the drop-folder watcher stops (its units stay), the agent stops, the API closes. On a
 * restart the agent touches no unit and the machine's presence is left to its lease (agent_ttl)
 * so a fleetd restarted on the same boot takes it over; on a stop it stops and unloads every unit
 * and then revokes the presence. Components are built by injected factories
 * (fleetd-components.ts), so the wiring is tested with in-memory ones.
 */

/** What a fleetd is made of. */
export interface FleetdDeps {
  readonly settings: FleetdSettings;
  readonly components: FleetdComponents;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly version: string;
  /** Applies `verbosity` to the logger (at start and on reload). */
  readonly setVerbosity?: (verbosity: number) => void;
  /** How long to retry connecting to systemd before giving up; default 30 s. */
  readonly systemdConnectTimeoutMs?: number;
  /**
   * Called when fleetd cannot go on (the connection to systemd is lost for good): main stops
   * fleetd and exits non-zero, and systemd's Restart= starts a fresh one, which adopts the
   * running units.
   */
  readonly onFatal?: (error: Error) => void;
  /** fleetd's process ID, to find its own systemd unit; default process.pid. */
  readonly pid?: number;
  /** The process's metrics; default a new FleetMetrics (one per fleetd, kept across reloads). */
  readonly metrics?: FleetMetrics;
}

/** The agent's safety-net reconcile period (fleet's agent reconciled every 5 s; ours is event-driven). */
export const AGENT_RECONCILE_INTERVAL_MS = 5000;
/** How long fleetd waits for systemd to say why it stops. */
const SHUTDOWN_QUERY_TIMEOUT_MS = 2000;

/** Rejects when `promise` does not settle within `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new FleetError('SYSTEMD_UNAVAILABLE', `no answer within ${ms} ms`, { retryable: true }));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => {
    clearTimeout(timer);
  });
}

/** fleet: the engine leader's lease is 5 x engine_reconcile_interval. */
export const ENGINE_LEASE_INTERVALS = 5;
const DEFAULT_SYSTEMD_CONNECT_TIMEOUT_MS = 30_000;

/** The running components; a field is set once its component started. */
interface Stack {
  registry?: FleetdRegistry;
  systemd?: SystemdManager;
  api?: FleetdApi;
  agent?: FleetdAgent;
  dropWatcher?: FleetdUnitDropWatcher;
  /** Answers status and journal requests for this machine (agent/unit-output.ts). */
  outputResponder?: Subscription;
  engine?: FleetdEngine;
  metricsListener?: MetricsListener;
  events?: EventRecorder;
}

/** What a SIGUSR1 dump shows. */
export interface FleetdStatus {
  readonly state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped';
  readonly machineId: string | undefined;
  readonly announced: boolean;
  readonly engine: 'disabled' | 'leading' | 'following' | 'not started';
}

/** One fleetd: see the file comment. */
export class Fleetd {
  private readonly log: Logger;
  private settings: FleetdSettings;
  private stack: Stack = {};
  private state: FleetdStatus['state'] = 'new';
  private announced = false;
  private machineId: string | undefined;
  private bootId = '';
  /** Aborts a start (or a reload's restart) in progress when fleetd stops. */
  private readonly stopping = new AbortController();
  /** Start, reloads and stop run one at a time, in order. */
  private queue: Promise<unknown> = Promise.resolve();

  /** What GET /metrics serves; its gauges read the components of the current stack. */
  readonly metrics: FleetMetrics;

  constructor(private readonly deps: FleetdDeps) {
    this.log = deps.logger;
    this.settings = deps.settings;
    this.metrics = deps.metrics ?? new FleetMetrics();
    this.metrics.setSources({
      engine: () => this.stack.engine?.view?.(),
      clusterStates: () => this.stack.registry?.listUnitStates() ?? Promise.resolve([]),
      localUnits: async () => {
        const systemd = this.stack.systemd;
        if (systemd === undefined) return [];
        return systemd.unitStatus(await systemd.listUnitFiles());
      },
      dropFolderFiles: () => this.stack.dropWatcher?.files,
    });
  }

  /**
   * True once the machine is announced and until fleetd stops or restarts its components, except
   * while the agent's presence is lost (etcd away past agent_ttl) and not yet announced again.
   */
  get ready(): boolean {
    return this.announced && this.stack.agent?.present !== false;
  }

  /** The configuration in use. */
  get config(): FleetdConfig {
    return this.settings.config;
  }

  /** A summary for logs (SIGUSR1). */
  status(): FleetdStatus {
    const engine = this.stack.engine;
    return {
      state: this.state,
      machineId: this.machineId,
      announced: this.announced,
      engine: this.settings.config.disableEngine
        ? 'disabled'
        : engine === undefined
          ? 'not started'
          : engine.leading
            ? 'leading'
            : 'following',
    };
  }

  /**
   * Starts every component in order. Resolves once all run (the machine is announced), or
   * early when `stop()` is called meanwhile. Rejects when fleetd cannot run: no machine ID,
   * systemd unreachable past its timeout, an API listener that cannot open, a machine ID held by
   * another live fleetd past agent_ttl. What started is closed again before it rejects.
   */
  start(): Promise<void> {
    if (this.state !== 'new') return Promise.reject(new FleetError('INTERNAL', 'fleetd was already started'));
    this.state = 'starting';
    return this.enqueue(async () => {
      const { components, version } = this.deps;
      this.log.info(`Starting fleetd version ${version}`, { version });
      this.deps.setVerbosity?.(this.settings.config.verbosity);
      try {
        this.machineId = await components.readMachineId();
        this.bootId = await components.readBootId();
        this.log.info('machine identity read', { machineId: this.machineId, bootId: this.bootId });
        await this.startStack();
      } catch (err) {
        if (this.stopping.signal.aborted) return;
        await this.closeStack();
        this.state = 'stopped';
        throw err;
      }
      if (!this.stopping.signal.aborted) {
        this.state = 'running';
        this.log.info('fleetd started', { machineId: this.machineId });
      }
    });
  }

  /**
   * Stops fleetd: aborts a start in progress, then closes the engine (resigning), the agent
   * (units keep running, presence left to its lease), the API, systemd and the registry.
   * Idempotent; resolves when everything is closed. Never rejects: a component that fails to
   * close is logged.
   */
  stop(mode: ShutdownMode = 'restart'): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return this.queue.then(() => undefined);
    this.state = 'stopping';
    this.stopping.abort();
    return this.enqueue(async () => {
      await this.closeStack(mode);
      this.state = 'stopped';
      this.log.info('fleetd stopped', { mode });
    }).catch(() => undefined);
  }

  /**
   * Stops fleetd on a signal, in the mode the shutdown policy decides (shutdown-mode.ts): asks
   * systemd which job it runs on fleetd's own unit (a restart or a stop), within 2 s; without an
   * answer the signal decides.
   */
  async shutdown(signal: string): Promise<void> {
    const systemd = this.stack.systemd;
    let job: string | undefined;
    if (systemd !== undefined) {
      try {
        job = await withTimeout(
          systemd.pendingJobOf(this.deps.pid ?? process.pid),
          SHUTDOWN_QUERY_TIMEOUT_MS,
        );
      } catch (err) {
        this.log.warn('cannot ask systemd why fleetd stops; the signal decides', {
          error: describeError(err),
        });
      }
    }
    const decision = decideShutdown(job, signal);
    this.log.info('shutdown mode decided', { mode: decision.mode, reason: decision.reason, signal });
    await this.stop(decision.mode);
  }

  /**
   * Applies a new configuration (SIGHUP): logs what changed, applies `verbosity` at once,
   * restarts only the API when only API options changed, and every component otherwise (fleet's
   * "Restarting server components"). Returns the changes. Rejects when the components cannot be
   * started again; fleetd is then stopped.
   */
  reload(next: FleetdSettings): Promise<ConfigChange[]> {
    return this.enqueue(async () => {
      if (this.state !== 'running') {
        this.log.warn('configuration not reloaded: fleetd is not running', { state: this.state });
        return [];
      }
      const changes = [
        ...diffConfig(this.settings.config, next.config),
        ...materialChanges(this.settings, next),
      ];
      this.settings = next;
      if (changes.length === 0) {
        this.log.info('configuration reloaded; nothing changed');
        return changes;
      }
      this.log.info('configuration reloaded', {
        changes: Object.fromEntries(changes.map((c) => [c.option, { from: c.from, to: c.to }])),
      });
      const scopes = new Set(changes.map((c) => c.reload));
      if (scopes.has('live')) this.deps.setVerbosity?.(next.config.verbosity);
      if (scopes.has('none')) {
        this.log.info('options read by nothing yet changed; they take effect when their feature arrives', {
          options: changes.filter((c) => c.reload === 'none').map((c) => c.option),
        });
      }
      try {
        if (scopes.has('server')) {
          this.log.info('Restarting server components', {
            options: changes.filter((c) => c.reload === 'server').map((c) => c.option),
          });
          await this.closeStack();
          await this.startStack();
        } else if (scopes.has('api')) {
          this.log.info('restarting the API', {
            options: changes.filter((c) => c.reload === 'api').map((c) => c.option),
          });
          const api = this.stack.api;
          const metricsListener = this.stack.metricsListener;
          this.stack.api = undefined;
          this.stack.metricsListener = undefined;
          await this.closeOne('API', () => api?.close());
          await this.closeOne('metrics listener', () => metricsListener?.close());
          await this.startApi();
        }
      } catch (err) {
        if (this.stopping.signal.aborted) return changes;
        this.log.error('components did not start again after the reload; stopping', {
          error: describeError(err),
        });
        await this.closeStack();
        this.state = 'stopped';
        throw err;
      }
      return changes;
    });
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(op, op);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Builds and starts the components from the current settings. */
  private async startStack(): Promise<void> {
    const { components, clock } = this.deps;
    const { config, material } = this.settings;
    const signal = this.stopping.signal;
    const machineId = this.machineId ?? '';
    const stack: Stack = {};
    this.stack = stack;

    const publicIp = await this.publicIp();
    this.throwIfStopping();

    const registry = components.createRegistry({ config, material, logger: this.log, metrics: this.metrics });
    stack.registry = registry;
    const events = new EventRecorder({
      store: registry,
      reporter: machineId,
      clock,
      logger: this.log,
      retention: { maxAgeMs: config.eventMaxAgeMs },
      maxCount: config.eventHistory,
      trimIf: () => stack.engine?.leading === true,
    });
    stack.events = events;
    this.log.info('etcd registry created', {
      endpoints: config.etcdServers,
      prefix: config.etcdKeyPrefix,
      tls: material.etcdTls !== undefined,
      user: config.etcdUsername,
      requestTimeoutMs: config.etcdRequestTimeoutMs,
    });

    const systemd = await connectSystemd({
      connect: () =>
        components.connectSystemd({
          busAddress: config.systemdBus === '' ? undefined : config.systemdBus,
          unitsDirectory: config.unitsDirectory,
          logger: this.log,
        }),
      clock,
      logger: this.log,
      timeoutMs: this.deps.systemdConnectTimeoutMs ?? DEFAULT_SYSTEMD_CONNECT_TIMEOUT_MS,
      signal,
    });
    stack.systemd = meteredSystemd(systemd, this.metrics);
    this.log.info('connected to systemd', {
      bus: config.systemdBus === '' ? 'system bus' : config.systemdBus,
      unitsDirectory: config.unitsDirectory,
    });
    stack.systemd.onLost((error) => {
      if (this.stopping.signal.aborted) return;
      this.log.error('lost the connection to systemd; fleetd must restart', { error: error.message });
      this.deps.onFatal?.(error);
    });

    this.throwIfStopping();
    await this.startApi();
    this.throwIfStopping();

    const agent = components.createAgent({
      machineId,
      registry,
      systemd: stack.systemd,
      clock,
      logger: this.log,
      events,
      metrics: this.metrics,
      config: {
        ttlSeconds: config.agentTtlMs / 1000,
        reconcileIntervalMs: AGENT_RECONCILE_INTERVAL_MS,
        publicIp,
        metadata: config.metadata,
        version: this.deps.version,
        bootId: this.bootId,
      },
    });
    stack.agent = agent;
    await startAgent(agent, { clock, logger: this.log, agentTtlMs: config.agentTtlMs, signal });
    this.announced = true;
    this.log.info('agent started', {
      machineId,
      publicIp,
      metadata: config.metadata,
      agentTtl: formatGoDuration(config.agentTtlMs),
    });

    try {
      stack.outputResponder = await registry.serveOutput(machineId, unitOutputHandler(this.log));
    } catch (err) {
      // Everything else works without it: status and journal of this machine's units fail.
      this.log.error('cannot answer status and journal requests', { error: describeError(err) });
    }

    this.throwIfStopping();
    if (config.unitDropDir === '') {
      this.log.info('unit drop folder disabled (unit_drop_dir is empty)');
    } else {
      const deps = {
        machineId,
        registry,
        clock,
        logger: this.log,
        metrics: this.metrics,
        config: { directory: config.unitDropDir },
      };
      // main.ts passes no factory: the real watcher needs only node:fs and the registry.
      const dropWatcher =
        components.createUnitDropWatcher === undefined
          ? new UnitDropWatcher(deps)
          : components.createUnitDropWatcher(deps);
      stack.dropWatcher = dropWatcher;
      dropWatcher.start();
    }

    this.throwIfStopping();
    if (config.disableEngine) {
      this.log.info('engine disabled (disable_engine)');
      return;
    }
    const engine = components.createEngine({
      machineId,
      registry,
      clock,
      logger: this.log,
      metrics: this.metrics,
      events,
      config: {
        reconcileIntervalMs: config.engineReconcileIntervalMs,
        leaseTtlSeconds: (ENGINE_LEASE_INTERVALS * config.engineReconcileIntervalMs) / 1000,
      },
    });
    stack.engine = engine;
    engine.start();
    this.log.info('engine started', {
      reconcileIntervalMs: config.engineReconcileIntervalMs,
      leaseTtlSeconds: (ENGINE_LEASE_INTERVALS * config.engineReconcileIntervalMs) / 1000,
    });
  }

  /** Ends a start between two steps once fleetd is stopping (start() then returns quietly). */
  private throwIfStopping(): void {
    if (this.stopping.signal.aborted) throw new FleetError('ABORTED', 'fleetd is stopping');
  }

  /** The configured public IP, or the detected one, or "" with a warning. */
  private async publicIp(): Promise<string> {
    const configured = this.settings.config.publicIp;
    if (configured !== '') return configured;
    const detected = await this.deps.components.detectPublicIp();
    if (detected !== undefined) {
      this.log.info('public IP detected', { publicIp: detected });
      return detected;
    }
    this.log.warn('no public IP detected and public_ip is not set; announcing the machine without one');
    return '';
  }

  private async startApi(): Promise<void> {
    const { config, material } = this.settings;
    const registry = this.stack.registry;
    if (registry === undefined) throw new FleetError('INTERNAL', 'the API needs the registry');
    const listen = config.metricsListen;
    if (listen !== undefined) {
      const { listener } = await MetricsListener.listen({
        host: listen.host,
        port: listen.port,
        scrape: () => this.metrics.scrape(),
        logger: this.log,
      });
      this.stack.metricsListener = listener;
    }
    if (config.apiSocket === '' && config.apiTcp === undefined && config.apiReadonlySocket === '') {
      this.log.warn('no API listener configured (api_socket, api_readonly_socket and api_tcp are empty)');
      return;
    }
    const api = this.deps.components.createApi({
      registry,
      logger: this.log,
      tokenLimit: config.tokenLimit,
      ready: () => this.ready,
      metrics: this.metrics,
      scrape: () => this.metrics.scrape(),
    });
    this.stack.api = api;
    // Who may do what is decided by the API server per listener (fleetd/api/server.ts).
    if (config.apiSocket !== '') {
      await api.listenUnix(config.apiSocket, {
        mode: config.apiSocketMode,
        ...(config.apiSocketGroup === '' ? {} : { group: config.apiSocketGroup }),
      });
    }
    if (config.apiReadonlySocket !== '') {
      await api.listenUnix(config.apiReadonlySocket, {
        mode: config.apiReadonlySocketMode,
        ...(config.apiReadonlySocketGroup === '' ? {} : { group: config.apiReadonlySocketGroup }),
        access: { kind: 'read' },
      });
    }
    const tcp = config.apiTcp;
    if (tcp !== undefined) {
      await api.listenTcp({
        host: tcp.host,
        port: tcp.port,
        ...(material.apiTls === undefined ? {} : { tls: material.apiTls }),
        allowPlainHttpOnLoopback: config.apiAllowPlainHttp,
        ...(config.apiTlsWriters.length === 0
          ? {}
          : { access: { kind: 'writers', commonNames: config.apiTlsWriters } }),
      });
    }
    this.log.info('API started', {
      socket: config.apiSocket,
      tcp: tcp === undefined ? '' : `${tcp.host}:${tcp.port}`,
      tls: material.apiTls !== undefined,
    });
  }

  /** Closes what runs, in reverse order of start; failures are logged, not thrown. */
  private async closeStack(mode: ShutdownMode = 'restart'): Promise<void> {
    const stack = this.stack;
    this.stack = {};
    this.announced = false;
    if (stack.engine !== undefined) {
      const engine = stack.engine;
      await this.closeOne('engine (leadership resigned)', () => engine.close());
    }
    if (stack.dropWatcher !== undefined) {
      const dropWatcher = stack.dropWatcher;
      await this.closeOne('unit drop-folder watcher (its units stay)', () => dropWatcher.close());
    }
    if (stack.outputResponder !== undefined) {
      const responder = stack.outputResponder;
      await this.closeOne('status and journal responder', () => responder.close());
    }
    if (stack.agent !== undefined) {
      const agent = stack.agent;
      // The shutdown policy (shutdown-mode.ts). A restart: units keep running, the presence
      // stays until its lease expires, and a fleetd restarted on this boot takes it over. A stop:
      // every unit stops, then the presence is revoked and the engine moves the units.
      if (mode === 'stop') {
        await this.closeOne('agent (units stopped and unloaded; presence revoked)', () =>
          agent.close({ stopUnits: true }),
        );
      } else {
        await this.closeOne('agent (units keep running; presence left to its lease)', () =>
          agent.close({ release: false }),
        );
      }
    }
    if (stack.api !== undefined) {
      const api = stack.api;
      await this.closeOne('API', () => api.close());
    }
    if (stack.metricsListener !== undefined) {
      const listener = stack.metricsListener;
      await this.closeOne('metrics listener', () => listener.close());
    }
    if (stack.events !== undefined) {
      const events = stack.events;
      await this.closeOne('event recorder (buffered events written)', () => events.close());
    }
    if (stack.systemd !== undefined) {
      const systemd = stack.systemd;
      await this.closeOne('systemd connection', () => systemd.close());
    }
    if (stack.registry !== undefined) {
      const registry = stack.registry;
      await this.closeOne('etcd registry', () => registry.close({ keepPresences: true }));
    }
  }

  private async closeOne(what: string, close: () => Promise<void> | undefined): Promise<void> {
    try {
      await close();
      this.log.info('component stopped', { stopped: what });
    } catch (err) {
      this.log.warn('component failed to stop', { stopped: what, error: describeError(err) });
    }
  }
}

/** TLS files whose contents changed under the same paths (a certificate rotated before SIGHUP). */
function materialChanges(before: FleetdSettings, after: FleetdSettings): ConfigChange[] {
  const changes: ConfigChange[] = [];
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
  if (!same(before.material.etcdTls, after.material.etcdTls)) {
    changes.push({
      option: 'etcd TLS files',
      from: 'previous contents',
      to: 'new contents',
      reload: 'server',
    });
  }
  if (!same(before.material.apiTls, after.material.apiTls)) {
    changes.push({ option: 'API TLS files', from: 'previous contents', to: 'new contents', reload: 'api' });
  }
  return changes;
}

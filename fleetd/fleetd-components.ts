import type { AgentDeps } from '../agent/agent.js';
import type { ApiAccess, ApiUnixListenOptions } from './api/server.js';
import type { SystemdManager } from '../agent/systemd-manager.js';
import type { UnitDropWatcherDeps } from '../agent/unit-drop-watcher.js';
import type { EngineDeps, EngineView } from '../engine/engine.js';
import type { MetricsHooks } from '../lib/metrics.js';
import type { MetricsScrape } from './api/context.js';
import type { Logger } from '../lib/logger.js';
import type { Registry } from '../registry/registry.js';
import type { FleetdConfig } from './config.js';
import type { ConfigMaterial } from './config-loader.js';

/**
 * What fleetd is built from: the components as fleetd drives them, and the factories that make
 * them. main.ts passes the real ones (EtcdRegistry, DbusSystemdManager, Agent, Engine, ApiServer);
 * tests pass in-memory ones.
 */

/** The registry fleetd owns: `close({ keepPresences })` leaves presences to their leases. */
export interface FleetdRegistry extends Registry {
  close(options?: { readonly keepPresences?: boolean }): Promise<void>;
}

/** TLS of the TCP API, as PEM contents. */
export interface ApiTlsMaterial {
  readonly cert: string;
  readonly key: string;
  /** The CA client certificates must chain to (the TCP API always requires them). */
  readonly ca: string;
}

/** The HTTP API server as fleetd drives it (fleetd/api/server.ts). */
export interface FleetdApi {
  listenUnix(path: string, options?: number | ApiUnixListenOptions): Promise<void>;
  listenTcp(options: {
    readonly host: string;
    readonly port: number;
    readonly tls?: ApiTlsMaterial;
    readonly allowPlainHttpOnLoopback?: boolean;
    readonly access?: ApiAccess;
  }): Promise<unknown>;
  close(): Promise<void>;
}

/** What the API server is built from. */
export interface FleetdApiDeps {
  readonly registry: Registry;
  readonly logger: Logger;
  readonly tokenLimit: number;
  /** False until this machine is announced: the API answers 503 meanwhile, as fleet did. */
  readonly ready: () => boolean;
  readonly metrics?: MetricsHooks;
  /** What GET /metrics serves. */
  readonly scrape?: () => Promise<MetricsScrape>;
}

/** The agent as fleetd drives it (agent/agent.ts). */
export interface FleetdAgent {
  /** False while the machine's presence is lost and not announced again. */
  readonly present: boolean;
  start(signal?: AbortSignal): Promise<void>;
  close(options?: { readonly release?: boolean; readonly stopUnits?: boolean }): Promise<void>;
}

/** The engine as fleetd drives it (engine/engine.ts). */
export interface FleetdEngine {
  readonly leading: boolean;
  /** The leader's view, for metrics (engine.ts); optional for fakes. */
  view?(): EngineView;
  start(): void;
  close(): Promise<void>;
}

/** The unit drop-folder watcher as fleetd drives it (agent/unit-drop-watcher.ts). */
export interface FleetdUnitDropWatcher {
  /** Unit files in the folder as of the last scan (for metrics); optional for fakes. */
  readonly files?: number;
  /** Starts watching at once; never throws (failures are retried and logged). */
  start(): void;
  close(): Promise<void>;
}

/** The factories fleetd builds its components with; main.ts passes the real ones. */
export interface FleetdComponents {
  readMachineId(): Promise<string>;
  readBootId(): Promise<string>;
  detectPublicIp(): Promise<string | undefined>;
  createRegistry(options: {
    readonly config: FleetdConfig;
    readonly material: ConfigMaterial;
    readonly logger: Logger;
    readonly metrics?: MetricsHooks;
  }): FleetdRegistry;
  /** Connects to systemd; a retryable SYSTEMD_UNAVAILABLE is retried (see `systemdConnectTimeoutMs`). */
  connectSystemd(options: {
    readonly busAddress: string | undefined;
    readonly unitsDirectory: string;
    readonly logger: Logger;
  }): Promise<SystemdManager>;
  createAgent(deps: AgentDeps): FleetdAgent;
  createEngine(deps: EngineDeps): FleetdEngine;
  createApi(deps: FleetdApiDeps): FleetdApi;
  /**
   * Builds the watcher of unit_drop_dir. Optional: without it fleetd builds the real
   * UnitDropWatcher, which needs nothing but node:fs and the registry it is given.
   */
  createUnitDropWatcher?(deps: UnitDropWatcherDeps): FleetdUnitDropWatcher;
}

/** A configuration with the files it names, as config-loader.ts loads it. */
export interface FleetdSettings {
  readonly config: FleetdConfig;
  readonly material: ConfigMaterial;
}

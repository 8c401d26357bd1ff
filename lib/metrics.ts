/**
 * The narrow hooks through which the registry, the engine, the agent, the API and the drop
 * folder report what they measure. Code that measures calls these and knows nothing of the
 * metrics library: fleetd/metrics.ts implements them with Prometheus collectors, and everything
 * else (tests, benchmarks, the pure code) gets {@link NO_METRICS}, which does nothing.
 *
 * Labels stay bounded: operations, loops, job kinds, results, routes and status codes come from
 * fixed sets; no unit or machine name is ever a label here.
 */
export interface MetricsHooks {
  /** One etcd request of registry `operation` (`submitUnit`, `applySchedule`, ...) ended. */
  etcdRequest(operation: string, ok: boolean, seconds: number): void;
  /** One run of a reconcile loop ended. */
  reconciled(loop: ReconcileLoopKind, ok: boolean, seconds: number): void;
  /** A systemd start or stop job ended with systemd's `result` (`done`, `failed`, ...). */
  systemdJob(job: 'start' | 'stop', result: string, seconds: number): void;
  /** The API answered a request to `route` (the router's resource name, e.g. `units/<name>`). */
  apiRequest(route: string, method: string, status: number, seconds: number): void;
  /** The drop-folder watcher handled one file (`submitted`, `replaced`, `destroyed`, `error`, ...). */
  dropFolderFile(outcome: string): void;
}

/** Which loop a reconcile belongs to. */
export type ReconcileLoopKind = 'engine' | 'agent';

/** Hooks that do nothing: the default wherever no metrics are wanted. */
export const NO_METRICS: MetricsHooks = {
  etcdRequest: () => undefined,
  reconciled: () => undefined,
  systemdJob: () => undefined,
  apiRequest: () => undefined,
  dropFolderFile: () => undefined,
};

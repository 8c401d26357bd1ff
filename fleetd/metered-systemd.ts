import { performance } from 'node:perf_hooks';
import type { JobResult, SystemdManager } from '../agent/systemd-manager.js';
import type { MetricsHooks } from '../lib/metrics.js';

/**
 * A SystemdManager that reports each start and stop job (its result and how long systemd took)
 * to the metrics hooks and otherwise passes every call through. fleetd wraps the real manager
 * in it, so the agent measures nothing itself.
 */
export function meteredSystemd(inner: SystemdManager, metrics: MetricsHooks): SystemdManager {
  const job = async (kind: 'start' | 'stop', run: () => Promise<JobResult>): Promise<JobResult> => {
    const started = performance.now();
    let result = 'error';
    try {
      result = await run();
      return result as JobResult;
    } finally {
      metrics.systemdJob(kind, result, (performance.now() - started) / 1000);
    }
  };
  return {
    unitsDirectory: inner.unitsDirectory,
    ...(inner.loadsNewUnitsOnDemand === undefined
      ? {}
      : { loadsNewUnitsOnDemand: inner.loadsNewUnitsOnDemand }),
    listUnitFiles: () => inner.listUnitFiles(),
    readUnitFile: (name) => inner.readUnitFile(name),
    installUnit: (name, contents, options) => inner.installUnit(name, contents, options),
    removeUnit: (name) => inner.removeUnit(name),
    reload: () => inner.reload(),
    startUnit: (name) => job('start', () => inner.startUnit(name)),
    stopUnit: (name) => job('stop', () => inner.stopUnit(name)),
    unitStatus: (names) => inner.unitStatus(names),
    subscribe: (listener) => inner.subscribe(listener),
    pendingJobOf: (pid) => inner.pendingJobOf(pid),
    onLost: (listener) => {
      inner.onLost(listener);
    },
    close: () => inner.close(),
  };
}

/**
 * The engine process of bench/scale.ts: the real Engine over its own EtcdRegistry, as fleetd runs
 * it (leader election, engine_reconcile_interval, lease of 5 intervals), alone in its process so
 * its CPU time and memory are its own. Answers the parent's sample and stop requests.
 *
 *   node dist/bench/scale-engine.js '<EngineSettings as JSON>'   (forked by scale.js)
 */
import { Engine } from '../engine/engine.js';
import { systemClock } from '../lib/clock.js';
import { describeError } from '../lib/errors.js';
import { createLogger, silentLogger, type LogLevel } from '../lib/logger.js';
import { EtcdRegistry } from '../registry/etcd-registry.js';
import { Sampler, toParent, type EngineSettings, type ParentMessage } from './scale-ipc.js';
import { EventRecorder } from '../registry/event-recorder.js';

async function main(): Promise<void> {
  const settings = JSON.parse(process.argv[2] ?? '{}') as EngineSettings;
  const sampler = new Sampler();
  // The parent gone (killed, crashed): leave with it.
  process.on('disconnect', () => process.exit(0));
  // SCALE_LOG=warn (or info, debug) shows the components' logs on stderr.
  const level = process.env.SCALE_LOG as LogLevel | undefined;
  const logger = level === undefined ? silentLogger : createLogger({ level, json: false });
  const registry = new EtcdRegistry({
    endpoints: settings.endpoints,
    prefix: settings.prefix,
    requestTimeoutMs: settings.requestTimeoutMs,
  });
  const engine = new Engine({
    machineId: 'engine-host',
    registry,
    clock: systemClock,
    logger,
    // Events on, as fleetd records them (fleetd.ts): one recorder per fleetd.
    events: new EventRecorder({
      store: registry,
      reporter: 'engine-host',
      clock: systemClock,
      logger,
      retention: { maxAgeMs: 86_400_000 },
      maxCount: 10_000,
      trimIf: () => true,
    }),
    config: {
      reconcileIntervalMs: settings.reconcileIntervalMs,
      leaseTtlSeconds: (5 * settings.reconcileIntervalMs) / 1000,
    },
  });
  engine.start();
  while (!engine.leading) await systemClock.sleep(10);
  await engine.idle();
  const extra = (): {
    count: number;
    requests: number;
    keepalives: number;
    byOperation: Record<string, number>;
  } => {
    const s = registry.stats();
    return {
      count: engine.rounds,
      requests: s.requests,
      keepalives: s.keepalives,
      byOperation: { ...s.byOperation },
    };
  };
  toParent({ type: 'ready', sample: sampler.sample(extra()) });
  process.on('message', (message: ParentMessage) => {
    void (async () => {
      if (message.type === 'sample') {
        if (message.gc) global.gc?.();
        const sample = sampler.sample(extra());
        if (message.resetPeak) sampler.reset();
        toParent({ type: 'sample', sample });
      } else {
        sampler.stop();
        await engine.close();
        await registry.close();
        toParent({ type: 'stopped' });
        process.disconnect();
      }
    })();
  });
}

main().catch((err: unknown) => {
  toParent({ type: 'error', message: describeError(err) });
  process.exitCode = 1;
  process.disconnect();
});

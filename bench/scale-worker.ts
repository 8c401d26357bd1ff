/**
 * A worker of bench/scale.ts: runs simulated machines, each the real Agent over its own
 * InMemorySystemdManager, wired as fleetd wires it (agent TTL, 5 s safety-net reconcile, its own
 * machine ID, public IP and metadata, its own presence lease, watching only its own schedule).
 * Answers the parent's sample and stop requests; see scale-ipc.ts.
 *
 *   node dist/bench/scale-worker.js '<WorkerSettings as JSON>'   (forked by scale.js)
 */
import { Agent } from '../agent/agent.js';
import { InMemorySystemdManager } from '../agent/in-memory-systemd-manager.js';
import { systemClock } from '../lib/clock.js';
import { mapLimit } from '../lib/concurrency.js';
import { describeError } from '../lib/errors.js';
import { createLogger, silentLogger, type LogLevel } from '../lib/logger.js';
import { AGENT_RECONCILE_INTERVAL_MS } from '../fleetd/fleetd.js';
import { EtcdRegistry } from '../registry/etcd-registry.js';
import { Sampler, addCounts, toParent, type ParentMessage, type WorkerSettings } from './scale-ipc.js';
import { EventRecorder } from '../registry/event-recorder.js';

/** How many machines of one worker announce themselves at once (a cluster booting). */
const START_CONCURRENCY = 16;

interface Machine {
  readonly agent: Agent;
  readonly systemd: InMemorySystemdManager;
  readonly registry: EtcdRegistry;
}

export function machineId(m: number): string {
  // 32 hex digits, like /etc/machine-id.
  return `5ca1e${String(m).padStart(27, '0')}`;
}

async function main(): Promise<void> {
  const settings = JSON.parse(process.argv[2] ?? '{}') as WorkerSettings;
  const sampler = new Sampler();
  // The parent gone (killed, crashed): leave with it.
  process.on('disconnect', () => process.exit(0));
  // SCALE_LOG=warn (or info, debug) shows the components' logs on stderr.
  const level = process.env.SCALE_LOG as LogLevel | undefined;
  const logger = level === undefined ? silentLogger : createLogger({ level, json: false });
  const registries: EtcdRegistry[] = [];
  const newRegistry = (): EtcdRegistry => {
    const r = new EtcdRegistry({
      endpoints: settings.endpoints,
      prefix: settings.prefix,
      requestTimeoutMs: settings.requestTimeoutMs,
      logger,
    });
    registries.push(r);
    return r;
  };
  const shared = settings.clients === 'per-worker' ? newRegistry() : undefined;
  const machines: Machine[] = [];
  for (let i = 0; i < settings.count; i++) {
    const m = settings.first + i;
    const registry = shared ?? newRegistry();
    const systemd = new InMemorySystemdManager();
    const agent = new Agent({
      machineId: machineId(m),
      registry,
      systemd,
      clock: systemClock,
      logger,
      // Events on, as fleetd records them (fleetd.ts): one recorder per fleetd.
      events: new EventRecorder({
        store: registry,
        reporter: machineId(m),
        clock: systemClock,
        logger,
        retention: { maxAgeMs: 86_400_000 },
        maxCount: 10_000,
      }),
      config: {
        ttlSeconds: settings.agentTtlSeconds,
        reconcileIntervalMs: AGENT_RECONCILE_INTERVAL_MS,
        publicIp: `10.${(m >> 16) & 255}.${(m >> 8) & 255}.${m & 255}`,
        metadata: { rack: `r${m % 20}`, role: m % 2 === 0 ? 'web' : 'worker' },
        version: 'bench-scale',
        bootId: `boot-${m}`,
      },
    });
    machines.push({ agent, systemd, registry });
  }
  await mapLimit(machines, START_CONCURRENCY, (m) => m.agent.start());

  const extra = async (): Promise<{
    count: number;
    requests: number;
    keepalives: number;
    byOperation: Record<string, number>;
  }> => {
    let count = 0;
    for (const m of machines) count += (await m.systemd.listUnitFiles()).length;
    let requests = 0;
    let keepalives = 0;
    const byOperation: Record<string, number> = {};
    for (const r of registries) {
      const s = r.stats();
      requests += s.requests;
      keepalives += s.keepalives;
      addCounts(byOperation, s.byOperation);
    }
    return { count, requests, keepalives, byOperation };
  };
  toParent({ type: 'ready', sample: sampler.sample(await extra()) });

  process.on('message', (message: ParentMessage) => {
    void (async () => {
      if (message.type === 'sample') {
        if (message.gc) global.gc?.();
        const sample = sampler.sample(await extra());
        if (message.resetPeak) sampler.reset();
        toParent({ type: 'sample', sample });
      } else {
        sampler.stop();
        // fleetd's shutdown: units keep running, presences are left to their leases.
        await Promise.all(machines.map((m) => m.agent.close({ release: false })));
        await Promise.all(registries.map((r) => r.close({ keepPresences: true })));
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

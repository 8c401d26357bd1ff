/**
 * Benchmark: one agent with 1,000 scheduled units over the in-memory systemd and registry.
 *
 * Measures the CPU time of the first reconcile (load and start everything), of a steady-state
 * reconcile (nothing to do), and of a reconcile after one unit's desired state changed, plus the
 * process memory. Not a test: it prints figures.
 *
 *   node dist/bench/agent-memory.js [units=1000]
 */
import { Agent } from '../agent/agent.js';
import { InMemorySystemdManager } from '../agent/in-memory-systemd-manager.js';
import { systemClock } from '../lib/clock.js';
import { silentLogger } from '../lib/logger.js';
import { InMemoryRegistry } from '../registry/in-memory-registry.js';
import type { Placement, UnitRecord } from '../registry/model.js';
import { saveResult, runBench } from './lib/report.js';
import { fmtMB } from './lib/stats.js';
import { benchUnit } from './lib/units.js';

const UNITS = Number(process.argv[2] ?? 1000);

function record(i: number): UnitRecord {
  const name = `bench-${String(i).padStart(5, '0')}.service`;
  return benchUnit(name, [
    { section: 'Unit', name: 'Description', value: `benchmark unit ${i}` },
    { section: 'Service', name: 'ExecStart', value: '/bin/sleep infinity' },
  ]);
}

function cpuMs(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
}

async function main(): Promise<void> {
  const began = performance.now();
  const registry = new InMemoryRegistry();
  const systemd = new InMemorySystemdManager();
  const leadership = await registry.campaign('bench-engine', 10, new AbortController().signal);
  const units = Array.from({ length: UNITS }, (_, i) => record(i));
  for (const u of units) await registry.submitUnit(u, 'launched');
  const placements = units.map((u): Placement => ({
    unit: u.name,
    machine: 'm1',
    hash: u.hash,
    desiredState: 'launched',
  }));
  await registry.applySchedule(
    placements.map((placement) => ({ kind: 'put', placement })),
    leadership,
  );

  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const agent = new Agent({
    machineId: 'm1',
    registry,
    systemd,
    clock: systemClock,
    logger: silentLogger,
    config: {
      ttlSeconds: 10,
      reconcileIntervalMs: 3_600_000,
      publicIp: '10.0.0.1',
      metadata: {},
      version: 'bench',
    },
  });

  let cpu = process.cpuUsage();
  let wall = performance.now();
  await agent.start();
  await agent.idle();
  const firstCpu = cpuMs(cpu);
  const firstWall = performance.now() - wall;
  const running = (await systemd.unitStatus(units.map((u) => u.name))).filter(
    (s) => s.activeState === 'active',
  ).length;
  const states = (await registry.listUnitStates({ machine: 'm1' })).length;

  const steady: number[] = [];
  for (let i = 0; i < 20; i++) {
    cpu = process.cpuUsage();
    agent.trigger();
    await agent.idle();
    steady.push(cpuMs(cpu));
  }
  steady.sort((a, b) => a - b);

  const one: number[] = [];
  for (let i = 0; i < 20; i++) {
    const u = units[i];
    if (u === undefined) break;
    await registry.applySchedule(
      [{ kind: 'put', placement: { unit: u.name, machine: 'm1', hash: u.hash, desiredState: 'loaded' } }],
      leadership,
    );
    cpu = process.cpuUsage();
    wall = performance.now();
    await agent.idle();
    one.push(cpuMs(cpu));
  }
  one.sort((a, b) => a - b);

  global.gc?.();
  const mem = process.memoryUsage();
  console.log(`agent over in-memory systemd: ${UNITS} scheduled units`);
  console.log(
    `  first reconcile (load + start all):   ${firstCpu.toFixed(0)} ms CPU, ${firstWall.toFixed(0)} ms wall`,
  );
  console.log(`  units running / states published:      ${running} / ${states}`);
  console.log(
    `  steady reconcile, nothing to do:      ${(steady[10] ?? 0).toFixed(2)} ms CPU (median of ${steady.length})`,
  );
  console.log(
    `  reconcile after one unit changed:     ${(one[10] ?? 0).toFixed(2)} ms CPU (median of ${one.length})`,
  );
  console.log(`  systemd calls in total:               ${systemd.callCount()}`);
  console.log(`  registry requests in total:           ${registry.requestCount}`);
  console.log(
    `  process RSS: ${fmtMB(mem.rss)} (before the agent ${fmtMB(rssBefore)}), heap used ${fmtMB(mem.heapUsed)}`,
  );
  await agent.close();
  saveResult({
    name: 'agent-memory',
    title: 'One agent with many units (in-memory systemd)',
    durationMs: performance.now() - began,
    params: { units: UNITS },
    method:
      `One real Agent with ${UNITS} units scheduled to it, over the in-memory systemd and registry, ` +
      "so only the agent's own code is measured: CPU of the first reconcile (load and start all), of a " +
      'reconcile with nothing to do, and of one after a single unit changed; process memory after GC.',
    tables: [
      {
        title: 'Agent cost',
        columns: ['figure', 'value'],
        rows: [
          ['first reconcile (load + start all), CPU', `${firstCpu.toFixed(0)} ms`],
          ['first reconcile, wall', `${firstWall.toFixed(0)} ms`],
          ['units running / states published', `${running} / ${states}`],
          ['steady reconcile, nothing to do (median CPU)', `${(steady[10] ?? 0).toFixed(2)} ms`],
          ['reconcile after one unit changed (median CPU)', `${(one[10] ?? 0).toFixed(2)} ms`],
          ['systemd calls in total', systemd.callCount()],
          ['registry requests in total', registry.requestCount],
          ['process RSS (before the agent)', `${fmtMB(mem.rss)} (${fmtMB(rssBefore)})`],
          ['heap used', fmtMB(mem.heapUsed)],
        ],
      },
    ],
    targets: [],
    notes: [],
  });
}

runBench(main);

/**
 * Benchmark: the engine placing units through a real etcd.
 *
 * Starts Debian's etcd (the test harness), announces M simulated machines, starts one engine
 * (leader) on its own registry client, then submits N launched units from another client as fast
 * as etcd takes them, and measures how long until every unit is placed. Prints units placed per
 * second and the etcd requests the engine issued per placed unit. Not a test: it prints figures.
 *
 *   node dist/bench/engine-etcd.js [units=5000] [machines=100]
 */
import { Engine } from '../engine/engine.js';
import { systemClock } from '../lib/clock.js';
import { silentLogger } from '../lib/logger.js';
import { EtcdRegistry } from '../registry/etcd-registry.js';
import type { UnitRecord } from '../registry/model.js';
import { startEtcd } from '../spec/helpers/etcd-harness.js';
import { saveResult, runBench } from './lib/report.js';
import { benchUnit } from './lib/units.js';

const UNITS = Number(process.argv[2] ?? 5000);
const MACHINES = Number(process.argv[3] ?? 100);
const SUBMIT_CONCURRENCY = 64;

function record(i: number): UnitRecord {
  const name = `bench-${String(i).padStart(6, '0')}.service`;
  return benchUnit(name, [
    { section: 'Unit', name: 'Description', value: `benchmark unit ${i}` },
    { section: 'Service', name: 'ExecStart', value: '/bin/sleep infinity' },
    ...(i % 10 === 0 ? [{ section: 'X-Fleet', name: 'Conflicts', value: 'bench-*0.service' }] : []),
  ]);
}

async function main(): Promise<void> {
  const began = performance.now();
  const etcd = await startEtcd({ name: 'bench-engine' });
  const prefix = '/bench/';
  const machinesClient = new EtcdRegistry({ endpoints: etcd.endpoints, prefix });
  const engineClient = new EtcdRegistry({ endpoints: etcd.endpoints, prefix });
  const submitClient = new EtcdRegistry({ endpoints: etcd.endpoints, prefix, requestTimeoutMs: 10_000 });
  try {
    for (let m = 0; m < MACHINES; m++) {
      await machinesClient.announceMachine(
        {
          id: `machine-${String(m).padStart(4, '0')}`,
          publicIp: `10.0.${m >> 8}.${m & 255}`,
          metadata: {},
          version: 'bench',
        },
        60,
      );
    }
    const engine = new Engine({
      machineId: 'machine-0000',
      registry: engineClient,
      clock: systemClock,
      logger: silentLogger,
      config: { reconcileIntervalMs: 2000, leaseTtlSeconds: 10 },
    });
    engine.start();
    while (!engine.leading) await systemClock.sleep(10);
    await engine.idle();

    const units = Array.from({ length: UNITS }, (_, i) => record(i));
    const engineRequestsBefore = engineClient.requestCount;
    const roundsBefore = engine.rounds;
    const started = performance.now();
    let next = 0;
    const submitters = Array.from({ length: SUBMIT_CONCURRENCY }, async () => {
      for (;;) {
        const i = next++;
        const unit = units[i];
        if (unit === undefined) return;
        await submitClient.submitUnit(unit, 'launched');
      }
    });
    await Promise.all(submitters);
    const submitted = performance.now();
    // Wait until the engine's view says every unit is placed (its writes are confirmed by etcd).
    for (;;) {
      await engine.idle();
      const placed = (await submitClient.listSchedule()).length;
      const unplaceable = (await submitClient.listUnplaceable()).size;
      if (placed + unplaceable >= UNITS) break;
      await systemClock.sleep(5);
    }
    const done = performance.now();
    const placed = (await submitClient.listSchedule()).length;
    const engineRequests = engineClient.requestCount - engineRequestsBefore;
    const rounds = engine.rounds - roundsBefore;

    const seconds = (done - started) / 1000;
    console.log(`engine through real etcd: ${UNITS} units on ${MACHINES} machines`);
    console.log(`  submit (64 concurrent clients' requests): ${((submitted - started) / 1000).toFixed(2)} s`);
    console.log(`  first submit to all placed:               ${seconds.toFixed(2)} s`);
    console.log(
      `  units placed per second:                  ${(placed / seconds).toFixed(0)}  (target >= 1000)`,
    );
    console.log(`  engine reconciles:                        ${rounds}`);
    console.log(`  engine etcd requests:                     ${engineRequests}`);
    console.log(`  engine etcd requests per placed unit:     ${(engineRequests / placed).toFixed(3)}`);
    console.log(`  submit etcd requests per unit:            1 (one transaction)`);
    await engine.close();
    const rate = placed / seconds;
    saveResult({
      name: 'engine-etcd',
      title: 'Engine placing units through real etcd',
      durationMs: performance.now() - began,
      params: { units: UNITS, machines: MACHINES, submitConcurrency: SUBMIT_CONCURRENCY },
      method:
        `${MACHINES} simulated machines announced in a real etcd; one engine (leader) on its own client; ` +
        `${UNITS} launched units submitted from another client with ${SUBMIT_CONCURRENCY} requests in flight; ` +
        'timed from the first submit until every unit is placed (schedule written and confirmed by etcd).',
      tables: [
        {
          title: 'Placement',
          columns: ['figure', 'value'],
          rows: [
            ['submit, all units', `${((submitted - started) / 1000).toFixed(2)} s`],
            ['first submit to all placed', `${seconds.toFixed(2)} s`],
            ['units placed per second', rate.toFixed(0)],
            ['engine reconcile rounds', rounds],
            ['engine etcd requests', engineRequests],
            ['engine etcd requests per placed unit', (engineRequests / placed).toFixed(3)],
          ],
        },
      ],
      targets: [
        {
          what: 'units placed per second through real etcd',
          measured: rate.toFixed(0),
          target: '>= 1000',
          met: rate >= 1000,
          comment:
            `placed units only: ${UNITS - placed} of the ${UNITS} have Conflicts= that leave them unplaceable ` +
            `(${((UNITS / (done - started)) * 1000).toFixed(0)} units decided per second). Submitting took ` +
            `${((submitted - started) / 1000).toFixed(2)} s of the ${seconds.toFixed(2)} s; the engine placed ` +
            `the last unit ${((done - submitted) / 1000).toFixed(2)} s after the last submit, in ${rounds} rounds.`,
        },
      ],
      notes: [],
    });
  } finally {
    await submitClient.close();
    await engineClient.close();
    await machinesClient.close();
    await etcd.stop();
  }
}

runBench(main);

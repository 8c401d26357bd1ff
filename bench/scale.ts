/**
 * Benchmark: fleet at scale. 1,000 simulated machines (the real Agent over the in-memory systemd,
 * spread over a few worker processes) and one engine process, all on one real etcd; 10,000 units
 * submitted as many fleetctl clients would. Measures the time until all are placed and all report
 * active, the etcd requests per started unit (etcd's own counters), the engine's CPU and memory,
 * and the agents' memory per 1,000 units hosted. Not a test: it prints figures and saves
 * bench/results/scale.json.
 *
 *   node dist/bench/scale.js [machines=1000] [units=10000] [workers=4] [clients=per-machine]
 *
 * `clients`: `per-worker` (one etcd client shared by a worker's machines) or `per-machine` (one
 * EtcdRegistry, hence one gRPC channel, per simulated machine, as separate fleetds have).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { IWatchResponse } from 'etcd3';
import { systemClock } from '../lib/clock.js';
import { mapLimit } from '../lib/concurrency.js';
import { decodeUnitState } from '../registry/codec.js';
import { EtcdRegistry } from '../registry/etcd-registry.js';
import { KeyLayout } from '../registry/keys.js';
import type { UnitRecord } from '../registry/model.js';
import { startEtcd, type EtcdInstance } from '../systemd-fixtures/etcd/etcd-harness.js';
import { counterDelta, etcdCounters, requestCount } from './lib/lab-metrics.js';
import { saveResult, type ResultTable, type TargetCheck, runBench } from './lib/report.js';
import { benchUnit } from './lib/units.js';
import { fmtMs, quantile, fmtMB } from './lib/stats.js';
import type {
  ChildMessage,
  EngineSettings,
  ParentMessage,
  ProcessSample,
  WorkerSettings,
} from './scale-ipc.js';

const MACHINES = Number(process.argv[2] ?? 1000);
const UNITS = Number(process.argv[3] ?? 10_000);
const WORKERS = Math.max(1, Math.min(Number(process.argv[4] ?? 4), MACHINES));
const CLIENTS: WorkerSettings['clients'] = process.argv[5] === 'per-worker' ? 'per-worker' : 'per-machine';
/** Requests in flight while submitting: like that many fleetctl clients at once. */
const SUBMIT_CONCURRENCY = 128;
const AGENT_TTL_SECONDS = 10;
/** fleetd's defaults: engine_reconcile_interval 2 s, etcd_request_timeout 1 s. */
const ENGINE_RECONCILE_MS = 2000;
const REQUEST_TIMEOUT_MS = 1000;
/** Gives up waiting for placed/active after this long. */
const WAIT_LIMIT_MS = 240_000;
const TARGET_MS = 60_000;
const TARGET_REQUESTS_PER_UNIT = 6;
const PREFIX = '/bench-scale/';

const here = path.dirname(fileURLToPath(import.meta.url));

function record(i: number): UnitRecord {
  const name = `scale-${String(i).padStart(6, '0')}.service`;
  return benchUnit(name, [
    { section: 'Unit', name: 'Description', value: `scale benchmark unit ${i}` },
    { section: 'Service', name: 'ExecStart', value: `/usr/bin/app --instance ${i}` },
    { section: 'Service', name: 'Restart', value: 'always' },
    // Some real-looking constraints: a tenth conflict with each other, a twentieth want a rack.
    ...(i % 10 === 0 ? [{ section: 'X-Fleet', name: 'Conflicts', value: 'scale-*0.service' }] : []),
    ...(i % 20 === 5 ? [{ section: 'X-Fleet', name: 'MachineMetadata', value: `rack=r${i % 7}` }] : []),
  ]);
}

/** A forked child (worker or engine) and its request/answer channel. */
class Child {
  private readonly waiters: ((m: ChildMessage) => void)[] = [];
  private exited = false;
  readonly ready: Promise<ProcessSample>;

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    this.ready = new Promise((resolve, reject) => {
      proc.on('message', (m: ChildMessage) => {
        if (m.type === 'ready') resolve(m.sample);
        else if (m.type === 'error') reject(new Error(`${name}: ${m.message}`));
        else this.waiters.shift()?.(m);
      });
      proc.on('exit', (code, signal) => {
        this.exited = true;
        reject(new Error(`${name} exited (${code ?? signal ?? '?'})`));
      });
    });
    this.ready.catch(() => undefined);
  }

  static fork(name: string, script: string, settings: object): Child {
    const proc = fork(path.join(here, script), [JSON.stringify(settings)], {
      execArgv: ['--expose-gc', ...(process.env.SCALE_CHILD_NODE_OPTIONS?.split(' ').filter(Boolean) ?? [])],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new Child(name, proc);
  }

  private ask(message: ParentMessage): Promise<ChildMessage> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.proc.send(message);
    });
  }

  async sample(gc: boolean, resetPeak = false): Promise<ProcessSample> {
    const m = await this.ask({ type: 'sample', gc, resetPeak });
    if (m.type !== 'sample') throw new Error(`${this.name}: unexpected answer ${m.type}`);
    return m.sample;
  }

  /** Asks it to stop; kills it if it has not within `ms`. */
  async stop(ms = 15_000): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => {
      this.proc.once('exit', () => {
        resolve();
      });
    });
    if (this.proc.connected) this.proc.send({ type: 'stop' } satisfies ParentMessage);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), ms);
    await exited;
    clearTimeout(timer);
  }
}

/** CPU seconds and RSS of a process from /proc (etcd's). */
function procSample(pid: number, clkTck: number): { cpuSeconds: number; rss: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
    return { cpuSeconds: (Number(fields[11]) + Number(fields[12])) / clkTck, rss: rssKb * 1024 };
  } catch {
    return { cpuSeconds: Number.NaN, rss: Number.NaN };
  }
}

function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

function subtractCounts(
  a: Readonly<Record<string, number>>,
  b: Readonly<Record<string, number>>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(a)) if (v - (b[k] ?? 0) !== 0) out[k] = v - (b[k] ?? 0);
  return out;
}

function sumCounts(samples: readonly ProcessSample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) for (const [k, v] of Object.entries(s.byOperation)) out[k] = (out[k] ?? 0) + v;
  return out;
}

async function main(): Promise<void> {
  const benchStart = performance.now();
  const clkTck = clockTicks();
  const keys = new KeyLayout(PREFIX);
  const children: Child[] = [];
  let etcd: EtcdInstance | undefined;
  let submitter: EtcdRegistry | undefined;
  try {
    etcd = await startEtcd({ name: 'bench-scale' });
    const endpoints = etcd.endpoints;
    console.log(
      `scale: ${MACHINES} machines in ${WORKERS} worker processes (${CLIENTS} etcd clients), ${UNITS} units`,
    );
    console.log(`  etcd ${etcd.clientUrl} (pid ${etcd.pid})`);

    const engineSettings: EngineSettings = {
      endpoints,
      prefix: PREFIX,
      reconcileIntervalMs: ENGINE_RECONCILE_MS,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    };
    const engine = Child.fork('engine', 'scale-engine.js', engineSettings);
    children.push(engine);
    await engine.ready;

    const bootStart = performance.now();
    const workers: Child[] = [];
    for (let w = 0; w < WORKERS; w++) {
      const first = Math.floor((w * MACHINES) / WORKERS);
      const last = Math.floor(((w + 1) * MACHINES) / WORKERS);
      const settings: WorkerSettings = {
        endpoints,
        prefix: PREFIX,
        first,
        count: last - first,
        clients: CLIENTS,
        agentTtlSeconds: AGENT_TTL_SECONDS,
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
      };
      const child = Child.fork(`worker ${w}`, 'scale-worker.js', settings);
      children.push(child);
      workers.push(child);
    }
    await Promise.all(workers.map((w) => w.ready));
    const client = etcd.client();
    for (;;) {
      const present = await client.getAll().prefix(keys.machines).count();
      if (present >= MACHINES) break;
      await systemClock.sleep(200);
    }
    const bootMs = performance.now() - bootStart;
    console.log(`  ${MACHINES} machines announced and present: ${fmtMs(bootMs)}`);

    // The observer: two watches, created before the measured window (their creation is the only
    // request they make; the events etcd pushes are not requests).
    const units = Array.from({ length: UNITS }, (_, i) => record(i));
    let t0 = 0;
    const placedAt = new Map<string, number>();
    const activeAt = new Map<string, number>();
    const scheduled = new Set<string>();
    const active = new Set<string>();
    const activeOn = new Map<string, Set<string>>();
    let allPlaced: () => void = () => undefined;
    let allActive: () => void = () => undefined;
    const placedDone = new Promise<void>((resolve) => (allPlaced = resolve));
    const activeDone = new Promise<void>((resolve) => (allActive = resolve));
    const scheduleWatch = await client.watch().prefix(keys.schedules).create();
    scheduleWatch.on('data', (res: IWatchResponse) => {
      for (const e of res.events) {
        const rest = e.kv.key.toString().slice(keys.schedules.length);
        const unit = rest.slice(rest.indexOf('/') + 1);
        if (e.type === 'Put') {
          scheduled.add(unit);
          if (!placedAt.has(unit)) placedAt.set(unit, performance.now() - t0);
        } else scheduled.delete(unit);
      }
      if (scheduled.size >= UNITS) allPlaced();
    });
    const stateWatch = await client.watch().prefix(keys.states).create();
    stateWatch.on('data', (res: IWatchResponse) => {
      for (const e of res.events) {
        const key = e.kv.key.toString();
        const rest = key.slice(keys.states.length);
        const unit = rest.slice(0, rest.indexOf('/'));
        const machine = rest.slice(rest.indexOf('/') + 1);
        // A unit counts as active while some machine reports it active (a unit that moved has a
        // record on its old machine until that machine's agent unloads it).
        const reporters = activeOn.get(unit) ?? new Set<string>();
        if (e.type === 'Put' && decodeUnitState(key, e.kv.value.toString()).activeState === 'active') {
          reporters.add(machine);
          activeOn.set(unit, reporters);
          active.add(unit);
          if (!activeAt.has(unit)) activeAt.set(unit, performance.now() - t0);
        } else {
          reporters.delete(machine);
          if (reporters.size === 0) active.delete(unit);
        }
      }
      if (active.size >= UNITS) allActive();
    });
    submitter = new EtcdRegistry({ endpoints, prefix: PREFIX, requestTimeoutMs: 10_000 });
    await submitter.listMachines(); // connects the submit client before the window

    // Let the announce burst settle, then the "before" figures.
    await systemClock.sleep(3000);
    const engineBefore = await engine.sample(true, true);
    const workersBefore = await Promise.all(workers.map((w) => w.sample(true, true)));
    const etcdBefore = procSample(etcd.pid, clkTck);
    const countersBefore = await etcdCounters(etcd.clientUrl);
    const submitRequestsBefore = submitter.requestCount;

    t0 = performance.now();
    let submitErrors = 0;
    await mapLimit(units, SUBMIT_CONCURRENCY, async (u) => {
      for (let attempt = 0; ; attempt++) {
        try {
          await submitter?.submitUnit(u, 'launched');
          return;
        } catch (err) {
          submitErrors++;
          if (attempt >= 5) throw err;
        }
      }
    });
    const submitMs = performance.now() - t0;
    console.log(`  submitted ${UNITS} units (${SUBMIT_CONCURRENCY} in flight): ${fmtMs(submitMs)}`);

    const progress = setInterval(() => {
      console.log(`  ... ${fmtMs(performance.now() - t0)}: placed ${scheduled.size}, active ${active.size}`);
    }, 5000);
    // Cancelled once both are done: a pending timer would keep this process alive that long.
    const stopWaiting = new AbortController();
    const deadline = systemClock.sleep(WAIT_LIMIT_MS, stopWaiting.signal).then(
      () => 'timeout' as const,
      () => 'cancelled' as const,
    );
    let placedMs = Number.NaN;
    let activeMs = Number.NaN;
    const placedRace = await Promise.race([placedDone.then(() => 'done' as const), deadline]);
    if (placedRace === 'done') {
      placedMs = performance.now() - t0;
      console.log(`  all ${UNITS} placed: ${fmtMs(placedMs)} after the first submit`);
    }
    const activeRace = await Promise.race([activeDone.then(() => 'done' as const), deadline]);
    if (activeRace === 'done') {
      activeMs = performance.now() - t0;
      console.log(`  all ${UNITS} active: ${fmtMs(activeMs)} after the first submit`);
    }
    clearInterval(progress);
    stopWaiting.abort();
    const windowMs = performance.now() - t0;
    const countersAfter = await etcdCounters(etcd.clientUrl);
    const etcdAfter = procSample(etcd.pid, clkTck);
    const submitRequests = submitter.requestCount - submitRequestsBefore;
    const engineAfter = await engine.sample(true);
    const workersAfter = await Promise.all(workers.map((w) => w.sample(true)));
    const placedCount = scheduled.size;
    const activeCount = active.size;
    // Units that never got there: what etcd holds for them (read after the window).
    const stuck: string[] = [];
    if (activeCount < UNITS) {
      const states = new Map<string, string>();
      for (const [key, value] of Object.entries(await client.getAll().prefix(keys.states).strings())) {
        const s = decodeUnitState(key, value);
        states.set(s.unit, `${s.activeState} on ${s.machine.slice(-4)}`);
      }
      const notActive = units.filter((u) => !active.has(u.name));
      const noState = notActive.filter((u) => !states.has(u.name)).length;
      const unplaced = notActive.filter((u) => !scheduled.has(u.name)).length;
      stuck.push(
        `${notActive.length} units not reporting active at the end: ${unplaced} not placed, ${noState} without a state record in etcd; e.g. ` +
          notActive
            .slice(0, 5)
            .map((u) => `${u.name} (${states.get(u.name) ?? 'no state'})`)
            .join(', '),
      );
      console.log(`  ${stuck[0] ?? ''}`);
    }

    // Requests: etcd's counters over the window. The observer made none in it.
    const delta = counterDelta(countersBefore, countersAfter);
    const allRequests = requestCount(delta);
    const keepalives = delta.get('stream msg LeaseKeepAlive') ?? 0;
    const requests = allRequests - keepalives;
    const perUnit = requests / UNITS;
    console.log(`  etcd requests in the window: ${allRequests} (${keepalives} lease keepalives)`);
    console.log(`  etcd requests per started unit (keepalives excluded): ${perUnit.toFixed(2)}`);
    const byMethod = [...delta]
      .filter(([k]) => k.startsWith('unary ') || k.startsWith('stream msg '))
      .sort((a, b) => b[1] - a[1]);
    for (const [k, v] of byMethod) console.log(`    ${k}: ${v}`);

    // Client-side breakdown by registry operation (who sent what).
    const engineOps = subtractCounts(engineAfter.byOperation, engineBefore.byOperation);
    const agentOps = subtractCounts(sumCounts(workersAfter), sumCounts(workersBefore));
    const engineRequests = engineAfter.requests - engineBefore.requests;
    const agentRequests =
      workersAfter.reduce((n, s) => n + s.requests, 0) - workersBefore.reduce((n, s) => n + s.requests, 0);
    const agentKeepalives =
      workersAfter.reduce((n, s) => n + s.keepalives, 0) -
      workersBefore.reduce((n, s) => n + s.keepalives, 0);
    console.log(`  by sender: submit ${submitRequests}, engine ${engineRequests}, agents ${agentRequests}`);

    const engineCpu = engineAfter.cpuSeconds - engineBefore.cpuSeconds;
    const workersCpu = workersAfter.reduce(
      (n, s, i) => n + s.cpuSeconds - (workersBefore[i]?.cpuSeconds ?? 0),
      0,
    );
    const etcdCpu = etcdAfter.cpuSeconds - etcdBefore.cpuSeconds;
    console.log(
      `  engine: ${engineCpu.toFixed(1)} CPU s, ${engineAfter.count - engineBefore.count} reconciles, peak RSS ${fmtMB(engineAfter.peakRss)}, peak heap ${fmtMB(engineAfter.peakHeapUsed)}`,
    );
    console.log(
      `  agents (all workers): ${workersCpu.toFixed(1)} CPU s; etcd ${etcdCpu.toFixed(1)} CPU s, RSS ${fmtMB(etcdAfter.rss)}`,
    );

    // Agent memory per 1,000 units hosted: each worker's RSS growth from before the units to all
    // active (both after a full GC), per unit it hosts.
    const memRows: (string | number)[][] = [];
    const perThousand: number[] = [];
    const heapPerThousand: number[] = [];
    workers.forEach((w, i) => {
      const before = workersBefore[i];
      const after = workersAfter[i];
      if (before === undefined || after === undefined) return;
      const hosted = after.count - before.count;
      const per = hosted > 0 ? ((after.rss - before.rss) / hosted) * 1000 : Number.NaN;
      const heapPer = hosted > 0 ? ((after.heapUsed - before.heapUsed) / hosted) * 1000 : Number.NaN;
      perThousand.push(per);
      heapPerThousand.push(heapPer);
      memRows.push([
        w.name,
        hosted,
        fmtMB(before.rss),
        fmtMB(after.rss),
        fmtMB(before.heapUsed),
        fmtMB(after.heapUsed),
        fmtMB(per),
        fmtMB(heapPer),
      ]);
    });
    const memPer = quantile(perThousand, 0.5);
    const heapPer = quantile(heapPerThousand, 0.5);
    const machinesPerWorker = MACHINES / WORKERS;
    const idlePerMachine = quantile(
      workersBefore.map((s) => s.rss / machinesPerWorker),
      0.5,
    );
    console.log(
      `  agent memory per 1,000 units hosted: ${fmtMB(memPer)} RSS, ${fmtMB(heapPer)} heap (median over workers)`,
    );

    const placedTimes = [...placedAt.values()];
    const activeTimes = [...activeAt.values()];
    const timeRows: (string | number)[][] = [
      ['submit all units', fmtMs(submitMs), '', ''],
      ['placed', fmtMs(quantile(placedTimes, 0.5)), fmtMs(quantile(placedTimes, 0.9)), fmtMs(placedMs)],
      [
        'reporting active',
        fmtMs(quantile(activeTimes, 0.5)),
        fmtMs(quantile(activeTimes, 0.9)),
        fmtMs(activeMs),
      ],
    ];
    const tables: ResultTable[] = [
      {
        title: `Time from the first submit (${MACHINES} machines, ${UNITS} units)`,
        columns: ['milestone', 'median unit', 'p90 unit', 'all units'],
        rows: timeRows,
      },
      {
        title: 'etcd requests in the window, by method (etcd /metrics)',
        columns: ['method', 'requests', 'per unit'],
        rows: byMethod.map(([k, v]) => [k, v, (v / UNITS).toFixed(3)]),
      },
      {
        title: 'Requests by sender and registry operation (client-side counts)',
        columns: ['sender', 'operation', 'requests', 'per unit'],
        rows: [
          ['submitters', 'submitUnit', submitRequests, (submitRequests / UNITS).toFixed(3)],
          ...Object.entries(engineOps)
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => ['engine', k, v, (v / UNITS).toFixed(3)]),
          ...Object.entries(agentOps)
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => ['agents', k, v, (v / UNITS).toFixed(3)]),
          ['agents', 'lease keepalives', agentKeepalives, (agentKeepalives / UNITS).toFixed(3)],
        ],
      },
      {
        title: 'CPU and memory over the window',
        columns: ['process', 'CPU s', 'RSS after', 'peak RSS', 'peak heap'],
        rows: [
          [
            'engine',
            engineCpu.toFixed(1),
            fmtMB(engineAfter.rss),
            fmtMB(engineAfter.peakRss),
            fmtMB(engineAfter.peakHeapUsed),
          ],
          ...workers.map((w, i) => {
            const a = workersAfter[i];
            const b = workersBefore[i];
            return [
              w.name,
              a === undefined || b === undefined ? 'n/a' : (a.cpuSeconds - b.cpuSeconds).toFixed(1),
              a === undefined ? 'n/a' : fmtMB(a.rss),
              a === undefined ? 'n/a' : fmtMB(a.peakRss),
              a === undefined ? 'n/a' : fmtMB(a.peakHeapUsed),
            ];
          }),
          ['etcd', etcdCpu.toFixed(1), fmtMB(etcdAfter.rss), '', ''],
        ],
      },
      {
        title: 'Agent (fleetd) memory per 1,000 units hosted',
        columns: [
          'worker',
          'units hosted',
          'RSS before',
          'RSS after',
          'heap before',
          'heap after',
          'RSS per 1,000',
          'heap per 1,000',
        ],
        rows: memRows,
      },
    ];
    const windowCpu = engineCpu + workersCpu + etcdCpu;
    const cores = (await import('node:os')).cpus().length;
    const busiest = [
      ['etcd', etcdCpu],
      ['agents', workersCpu],
      ['engine', engineCpu],
    ].sort((a, b) => Number(b[1]) - Number(a[1]));
    const bottleneck = `CPU over the window: etcd ${etcdCpu.toFixed(1)} s, agents ${workersCpu.toFixed(1)} s, engine ${engineCpu.toFixed(1)} s = ${windowCpu.toFixed(1)} s of ${((windowMs / 1000) * cores).toFixed(1)} core-seconds available (${cores} cores); busiest: ${String(busiest[0]?.[0])}`;
    console.log(`  ${bottleneck}`);
    const activeOk = Number.isFinite(activeMs) && activeMs <= TARGET_MS && activeCount >= UNITS;
    const targets: TargetCheck[] = [
      {
        what: `${MACHINES} machines x ${UNITS} units: first submit to all placed and reporting active`,
        measured: Number.isFinite(activeMs)
          ? fmtMs(activeMs)
          : `not done after ${fmtMs(windowMs)} (${activeCount} active, ${placedCount} placed)`,
        target: '<= 60 s',
        met: activeOk,
        comment: activeOk
          ? `all placed at ${fmtMs(placedMs)}. ${bottleneck}.`
          : `missed by ${Number.isFinite(activeMs) ? fmtMs(activeMs - TARGET_MS) : 'more than ' + fmtMs(windowMs - TARGET_MS)}. ${bottleneck}.`,
      },
      {
        what: 'etcd requests per started unit (etcd /metrics, lease keepalives excluded)',
        measured: perUnit.toFixed(2),
        target: `<= ${TARGET_REQUESTS_PER_UNIT}`,
        met: perUnit <= TARGET_REQUESTS_PER_UNIT,
        comment:
          `${keepalives} lease keepalives in the window besides (${(keepalives / UNITS).toFixed(2)} per unit). ` +
          (perUnit <= TARGET_REQUESTS_PER_UNIT
            ? ''
            : `missed by ${(perUnit - TARGET_REQUESTS_PER_UNIT).toFixed(2)} per unit; biggest: ${byMethod[0]?.[0] ?? '?'}.`),
      },
    ];
    saveResult({
      name: 'scale',
      title: `Scale: ${MACHINES} machines, ${UNITS} units`,
      durationMs: performance.now() - benchStart,
      params: {
        machines: MACHINES,
        units: UNITS,
        workers: WORKERS,
        clients: CLIENTS,
        submitConcurrency: SUBMIT_CONCURRENCY,
        agentTtlSeconds: AGENT_TTL_SECONDS,
        engineReconcileIntervalMs: ENGINE_RECONCILE_MS,
        etcdRequestTimeoutMs: REQUEST_TIMEOUT_MS,
      },
      method:
        `One real etcd (the test harness). ${WORKERS} worker processes run ${MACHINES} simulated machines: ` +
        'each is the real Agent over its own in-memory systemd, wired as fleetd wires it (own machine ID, ' +
        `address and metadata, own presence lease with agent_ttl ${AGENT_TTL_SECONDS} s, watching only its own ` +
        `schedule, 5 s safety-net reconcile). Etcd clients: ${CLIENTS === 'per-worker' ? "one EtcdRegistry (gRPC channel) shared by a worker's machines; each machine still has its own lease, watches and requests, so etcd sees the same requests as from separate fleetds, only multiplexed on fewer connections" : 'one EtcdRegistry (own gRPC channel) per machine, as separate fleetds would have'}. ` +
        'The engine runs alone in its own process (real Engine over its own EtcdRegistry, leader election, ' +
        `engine_reconcile_interval ${ENGINE_RECONCILE_MS / 1000} s), so its CPU and memory are its own. Once every ` +
        `machine is present, ${UNITS} units (launched) are submitted with ${SUBMIT_CONCURRENCY} submits in flight, ` +
        'as many fleetctl clients would. The main process observes through two etcd watches (schedule/ and state/) ' +
        'created before the window, so it sends no request in it. Requests per started unit = every unary call and ' +
        'stream message etcd counted (/metrics) from the first submit until all units report active, minus lease ' +
        'keepalives (reported apart), divided by the units. Agent memory per 1,000 units = per worker, (RSS after all ' +
        'active - RSS before the units, both after a full GC) / units that worker hosts x 1,000; the median over workers.',
      tables,
      targets,
      notes: [
        `Booting ${MACHINES} machines (announce + watches) took ${fmtMs(bootMs)}; idle agent RSS is about ${fmtMB(idlePerMachine)} per machine (worker RSS / machines, runtime included).`,
        `Submit: ${submitErrors} submit attempts failed and were retried.`,
        `Engine: ${engineAfter.count - engineBefore.count} leader reconciles in the window, ${engineRequests} requests.`,
        bottleneck,
        ...stuck,
      ],
    });
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await submitter?.close().catch(() => undefined);
    await etcd?.stop();
  }
}

runBench(main);

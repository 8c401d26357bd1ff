/**
 * Benchmark: convergence on real systemd, against the systemctl floor.
 *
 * Boots a three-machine FleetCluster (etcd on the host, fleetd in each systemd-nspawn machine with
 * its default configuration). For each size N (default 1, 10, 50, 100) and each of `runs` rounds
 * (default 5) it alternates two measurements, so that drift in the host hits both alike:
 *
 * - fleet: writes N unit files (one `sleep infinity` service each, names unique per run) to a
 *   temporary directory on the host, then from t0 runs the built fleetctl as its own process,
 *   `fleetctl start <files>` (which blocks until every unit is launched and active, as fleet's
 *   does), while this process polls `fleetctl list-units` in-process every 25 ms until all N rows
 *   read active/running. Recorded: when list-units first showed all N active/running, and when the
 *   fleetctl process returned. The headline is the later of the two: the units run and the user
 *   has the prompt back. Then `fleetctl destroy` and a wait until no machine's systemd has any of
 *   them left (not timed).
 * - floor: the same number of units, spread over the machines as fleet placed them in the
 *   preceding fleet run, started directly with systemctl: from t0, in every machine at once, one
 *   `sh -c` script (entered from the host like any command in the lab) writes the unit files to
 *   /run/systemd/system, runs `systemctl daemon-reload`, one `systemctl start` of them all, and
 *   polls `systemctl is-active` until all are active. The time until the last machine's script
 *   returns, exec into the machine included. Then they are stopped and removed (not timed).
 *
 * Prints each run, then a summary per size; saves bench/results/convergence.json.
 *
 *   node dist/bench/convergence.js [runs=5] [sizes=1,10,50,100]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';

import { run as fleetctlRun } from '../fleetctl/program.js';
import {
  FleetCluster,
  type ClusterMachine,
  type MachineRef,
} from '../systemd-fixtures/cluster/fleet-cluster.js';
import { saveResult, type ResultTable, type TargetCheck, runBench } from './lib/report.js';
import { fmtMs, summarize, type Summary } from './lib/stats.js';

const RUNS = Number(process.argv[2] ?? 5);
const SIZES = (process.argv[3] ?? '1,10,50,100').split(',').map(Number);
const MACHINES = 3;
const CLUSTER_NAME = 'bench-conv';
const LIST_POLL_MS = 25;
/**
 * Quiet time before every run: the previous run's teardown (destroy, units stopped, states
 * withdrawn, reloads) goes on for a few seconds after systemd lists none of its units, and would
 * otherwise be charged to the next run. Measured: back-to-back starts of 50 units 3 s apart took
 * 1.3-2.4 s, 5 s apart 1.3 s.
 */
const SETTLE_MS = 5000;
/** A run that has not converged by then fails the benchmark. */
const CONVERGE_TIMEOUT_MS = 120_000;
const TEARDOWN_TIMEOUT_MS = 120_000;

const TARGET_ONE_MS = 500;
const TARGET_FIFTY_MS = 1500;
const FLOOR_FACTOR = 2;
const FLOOR_SLACK_MS = 200;

if (!Number.isInteger(RUNS) || RUNS < 1)
  throw new Error(`runs must be a positive integer, not ${process.argv[2]}`);
if (SIZES.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`bad sizes ${process.argv[3]}`);

function unitText(name: string): string {
  return [
    '[Unit]',
    `Description=convergence benchmark unit ${name}`,
    '',
    '[Service]',
    // One process, no shell: the lab's cgroup-v1 stop hang bites multi-process units.
    'ExecStart=/bin/sleep infinity',
    '',
  ].join('\n');
}

/** Collects what an in-process fleetctl run writes. */
class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.text += chunk.toString();
    done();
  }
}

/**
 * The machine the benchmark's own list-units polls go to: neither m1 (which serves the timed
 * fleetctl start) nor the engine's leader, so that the 25 ms polls load neither.
 */
let observer: MachineRef = 'm1';

/** Runs fleetctl in this process against a machine's fleetd; rejects on a non-zero exit. */
async function fleetctl(
  cluster: FleetCluster,
  args: readonly string[],
  via: MachineRef = 'm1',
): Promise<string> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await fleetctlRun(['--endpoint', cluster.endpoint(via), ...args], {
    stdout,
    stderr,
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
  });
  if (code !== 0) throw new Error(`fleetctl ${args.join(' ')} exited ${code}: ${stderr.text.trim()}`);
  return stdout.text;
}

interface ListedUnit {
  readonly unit: string;
  readonly machine: string | null;
  readonly active: string | null;
  readonly sub: string | null;
}

async function listUnits(cluster: FleetCluster): Promise<ListedUnit[]> {
  const out = await fleetctl(
    cluster,
    ['list-units', '--output', 'json', '--fields', 'unit,machine,active,sub'],
    observer,
  );
  return JSON.parse(out) as ListedUnit[];
}

const isRunning = (u: ListedUnit): boolean => u.active === 'active' && u.sub === 'running';

/** Polls `check` every `everyMs` until it returns a value; throws with `why()` past the timeout. */
async function until<T>(
  what: string,
  timeoutMs: number,
  everyMs: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
      lastError = '';
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (performance.now() > deadline) {
      throw new Error(
        `${what}: not reached within ${timeoutMs} ms${lastError === '' ? '' : ` (${lastError})`}`,
      );
    }
    await delay(everyMs);
  }
}

/** Shell-quoted for `sh -c`. */
const q = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

/** How many units matching `pattern` the machine's systemd still knows (any state). */
async function systemdCount(
  cluster: FleetCluster,
  machine: ClusterMachine,
  pattern: string,
): Promise<number> {
  const r = await cluster.exec(machine, [
    'systemctl',
    'list-units',
    '--all',
    '--plain',
    '--no-legend',
    pattern,
  ]);
  if (r.code !== 0) throw new Error(`systemctl list-units in ${machine.name}: ${r.stderr.trim()}`);
  return r.stdout.split('\n').filter((line) => line.trim() !== '').length;
}

interface Phases {
  /** list-unit-files first listed all N units (fleetctl created them). */
  submittedMs: number;
  /** ... all N with desired state launched (fleetctl moved them). */
  desiredMs: number;
  /** ... all N with a target machine (the engine placed them). */
  placedMs: number;
}

interface FleetRun extends Phases {
  /** list-units first showed all N active/running. */
  readonly listedMs: number;
  /** The fleetctl start process returned (exit 0). */
  readonly returnedMs: number;
  /** The headline: the later of the two. */
  readonly ms: number;
  /** Units per machine index (1-based), as fleet placed them. */
  readonly placement: readonly number[];
}

/**
 * One fleet run. Untraced (the measured runs): nothing but fleetctl talks to fleetd until
 * `fleetctl start` returns; then list-units is polled until it shows all N active/running. Traced
 * (one extra run per size, not counted): list-units and list-unit-files are polled all along, to
 * date the phases; the polls load fleetd and etcd, so its figures are a little slower.
 */
async function fleetRun(
  cluster: FleetCluster,
  dir: string,
  run: string,
  n: number,
  trace = false,
): Promise<FleetRun> {
  const names = Array.from({ length: n }, (_, i) => `conv-${run}-${i}.service`);
  const files = names.map((name) => join(dir, name));
  await Promise.all(names.map((name, i) => writeFile(files[i] ?? '', unitText(name))));
  const wanted = new Set(names);

  const t0 = performance.now();
  const starting = cluster
    .fleetctl('m1', ['start', ...files], { timeoutMs: CONVERGE_TIMEOUT_MS })
    .then((r) => {
      if (r.code !== 0) {
        throw new Error(
          `fleetctl start (${n} units) exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`,
        );
      }
      return performance.now() - t0;
    });
  const polling = { stopped: false };
  // A failed start ends the poll at once instead of waiting for its timeout.
  starting.catch(() => {
    polling.stopped = true;
  });
  // Untraced, list-units is asked only once fleetctl is back: the run itself is fleetctl's alone.
  const listFrom = trace ? Promise.resolve() : starting.then(() => undefined);
  const listing = listFrom.then(() =>
    until(`${n} units active/running in list-units`, CONVERGE_TIMEOUT_MS, LIST_POLL_MS, async () => {
      if (polling.stopped) throw new Error('fleetctl start failed');
      const rows = (await listUnits(cluster)).filter((u) => wanted.has(u.unit));
      if (rows.length !== n || !rows.every(isRunning)) return undefined;
      return { ms: performance.now() - t0, rows };
    }),
  );
  // Where the time goes: list-unit-files, polled alongside (every 50 ms), dates the phases.
  const phases: Phases = { submittedMs: Number.NaN, desiredMs: Number.NaN, placedMs: Number.NaN };
  const tracing = (async () => {
    while (trace && !polling.stopped && Number.isNaN(phases.placedMs)) {
      try {
        const out = await fleetctl(
          cluster,
          ['list-unit-files', '--output', 'json', '--fields', 'unit,dstate,tmachine'],
          observer,
        );
        const now = performance.now() - t0;
        const rows = (
          JSON.parse(out) as { unit: string; dstate: string | null; tmachine: string | null }[]
        ).filter((u) => wanted.has(u.unit));
        if (rows.length === n) {
          if (Number.isNaN(phases.submittedMs)) phases.submittedMs = now;
          if (Number.isNaN(phases.desiredMs) && rows.every((u) => u.dstate === 'launched'))
            phases.desiredMs = now;
          if (Number.isNaN(phases.placedMs) && rows.every((u) => u.tmachine !== null)) phases.placedMs = now;
        }
      } catch {
        // Only a trace: the next poll will tell.
      }
      await delay(2 * LIST_POLL_MS);
    }
  })();
  let listed: Awaited<typeof listing>;
  let returnedMs: number;
  try {
    [returnedMs, listed] = await Promise.all([starting, listing]);
  } finally {
    polling.stopped = true;
    await tracing;
  }

  const placement = cluster.machines.map(() => 0);
  for (const row of listed.rows) {
    const m = row.machine === null ? undefined : cluster.machineById(row.machine);
    if (m === undefined) throw new Error(`${row.unit} runs on an unknown machine ${row.machine}`);
    placement[m.index - 1] = (placement[m.index - 1] ?? 0) + 1;
  }

  await fleetctl(cluster, ['destroy', ...names]);
  await until(`${n} units gone from systemd`, TEARDOWN_TIMEOUT_MS, 100, async () => {
    const counts = await Promise.all(cluster.machines.map((m) => systemdCount(cluster, m, `conv-${run}-*`)));
    return counts.every((c) => c === 0) ? true : undefined;
  });
  await Promise.all(files.map((f) => rm(f, { force: true })));
  return { ...phases, listedMs: listed.ms, returnedMs, ms: Math.max(listed.ms, returnedMs), placement };
}

/** The script that starts `names` in one machine and returns once systemd has them all active. */
function floorScript(names: readonly string[]): string {
  const list = names.join(' ');
  return [
    'set -e',
    `for u in ${list}; do printf '%s' ${q(unitText('X'))} > /run/systemd/system/$u; done`,
    'systemctl daemon-reload',
    `systemctl start ${list}`,
    'i=0',
    `while [ "$(systemctl is-active ${list} | grep -cvx active)" != 0 ]; do`,
    '  i=$((i+1)); [ $i -lt 4000 ] || { echo not active >&2; exit 1; }; sleep 0.01',
    'done',
  ].join('\n');
}

async function floorRun(cluster: FleetCluster, run: string, placement: readonly number[]): Promise<number> {
  let next = 0;
  const perMachine = cluster.machines.map((m, i) => ({
    machine: m,
    names: Array.from({ length: placement[i] ?? 0 }, () => `floor-${run}-${next++}.service`),
  }));
  const busy = perMachine.filter((p) => p.names.length > 0);

  const t0 = performance.now();
  await Promise.all(
    busy.map(async ({ machine, names }) => {
      const r = await cluster.exec(machine, ['sh', '-c', floorScript(names)], {
        timeoutMs: CONVERGE_TIMEOUT_MS,
      });
      if (r.code !== 0)
        throw new Error(`floor start in ${machine.name} exited ${r.code}: ${r.stderr.trim()}`);
    }),
  );
  const ms = performance.now() - t0;

  await Promise.all(
    busy.map(async ({ machine, names }) => {
      const list = names.join(' ');
      const script = `systemctl stop ${list}; cd /run/systemd/system && rm -f ${list}; systemctl daemon-reload`;
      const r = await cluster.exec(machine, ['sh', '-c', script], { timeoutMs: TEARDOWN_TIMEOUT_MS });
      if (r.code !== 0)
        throw new Error(`floor teardown in ${machine.name} exited ${r.code}: ${r.stderr.trim()}`);
    }),
  );
  await until(`floor units gone from systemd`, TEARDOWN_TIMEOUT_MS, 100, async () => {
    const counts = await Promise.all(busy.map((p) => systemdCount(cluster, p.machine, `floor-${run}-*`)));
    return counts.every((c) => c === 0) ? true : undefined;
  });
  return ms;
}

/** The median wall time of `fleetctl version` as its own process: node start-up and module loading. */
async function fleetctlStartup(cluster: FleetCluster): Promise<Summary> {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const r = await cluster.fleetctl('m1', ['version']);
    if (r.code !== 0) throw new Error(`fleetctl version exited ${r.code}`);
    times.push(performance.now() - t0);
  }
  return summarize(times);
}

interface SizeResult {
  readonly n: number;
  readonly fleet: Summary;
  readonly listed: Summary;
  readonly returned: Summary;
  readonly floor: Summary;
  /** The traced run of this size (not counted): its phases. */
  readonly traced: FleetRun;
  readonly placements: readonly (readonly number[])[];
}

const ms0 = (v: number): string => (Number.isFinite(v) ? `${Math.round(v)} ms` : 'n/a');

async function main(): Promise<void> {
  const began = performance.now();
  const cluster = await FleetCluster.start({ name: CLUSTER_NAME, machines: MACHINES });
  console.log(`${MACHINES}-machine cluster ready in ${fmtMs(performance.now() - began)} (fleetd defaults)`);
  const dir = await mkdtemp(join(tmpdir(), 'fleet-conv-'));
  const results: SizeResult[] = [];
  let startup: Summary | undefined;
  try {
    const leader = await cluster.leader();
    const other = cluster.machines.find((m) => m.index !== 1 && m.index !== leader?.index);
    if (other !== undefined) observer = other;
    console.log(
      `engine leader ${leader?.name ?? '?'}; fleetctl start via m1; list-units polled via ${other?.name ?? 'm1'}`,
    );
    startup = await fleetctlStartup(cluster);
    console.log(`fleetctl process start-up (fleetctl version): median ${ms0(startup.median)}`);
    // One warm-up round (1 unit, fleet then floor), not counted: first-use costs (page cache,
    // systemd's first daemon-reload in a fresh machine, fleetd's first unit) are not convergence.
    const warm = await fleetRun(cluster, dir, 'w', 1);
    await floorRun(cluster, 'w', warm.placement);
    console.log(`warm-up (not counted): fleet ${ms0(warm.ms)}`);

    for (const n of SIZES) {
      console.log(`\n${n} unit(s), ${RUNS} runs (fleet, then floor with fleet's placement):`);
      const fleet: FleetRun[] = [];
      const floor: number[] = [];
      for (let r = 1; r <= RUNS; r++) {
        const tag = `${n}x${r}`;
        await delay(SETTLE_MS);
        const f = await fleetRun(cluster, dir, tag, n);
        fleet.push(f);
        await delay(SETTLE_MS);
        const fl = await floorRun(cluster, tag, f.placement);
        floor.push(fl);
        console.log(
          `  run ${r}: fleet ${ms0(f.ms)} (fleetctl start returned ${ms0(f.returnedMs)}, ` +
            `list-units then showed all active/running at ${ms0(f.listedMs)}; placed ${f.placement.join('/')}); ` +
            `floor ${ms0(fl)}; ratio ${(f.ms / fl).toFixed(2)}`,
        );
      }
      await delay(SETTLE_MS);
      const traced = await fleetRun(cluster, dir, `${n}xt`, n, true);
      console.log(
        `  traced run (not counted): ${ms0(traced.ms)}; all submitted ${ms0(traced.submittedMs)}, ` +
          `desired launched ${ms0(traced.desiredMs)}, placed ${ms0(traced.placedMs)}, ` +
          `list-units all active/running ${ms0(traced.listedMs)}, fleetctl returned ${ms0(traced.returnedMs)}`,
      );
      const res: SizeResult = {
        n,
        fleet: summarize(fleet.map((f) => f.ms)),
        listed: summarize(fleet.map((f) => f.listedMs)),
        returned: summarize(fleet.map((f) => f.returnedMs)),
        floor: summarize(floor),
        traced,
        placements: fleet.map((f) => f.placement),
      };
      results.push(res);
      console.log(
        `  fleet median ${ms0(res.fleet.median)}, p90 ${ms0(res.fleet.p90)}, ` +
          `min ${ms0(res.fleet.min)}, max ${ms0(res.fleet.max)}, spread ${ms0(res.fleet.spread)}; ` +
          `floor median ${ms0(res.floor.median)}, p90 ${ms0(res.floor.p90)}; ` +
          `ratio ${(res.fleet.median / res.floor.median).toFixed(2)}`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
    await cluster.destroy();
  }

  const targets: TargetCheck[] = [];
  const bound = (r: SizeResult): number => FLOOR_FACTOR * r.floor.median + FLOOR_SLACK_MS;
  const one = results.find((r) => r.n === 1);
  const fifty = results.find((r) => r.n === 50);
  if (one !== undefined) targets.push(absoluteTarget('1 unit', one, TARGET_ONE_MS));
  if (fifty !== undefined) targets.push(absoluteTarget('50 units', fifty, TARGET_FIFTY_MS));
  for (const r of results) {
    const limit = bound(r);
    const met = r.fleet.median <= limit;
    targets.push({
      what: `${r.n} unit(s): fleet vs systemctl floor (median)`,
      measured: `${fmtMs(r.fleet.median)} (floor ${fmtMs(r.floor.median)}, ${(r.fleet.median / r.floor.median).toFixed(2)}x)`,
      target: `<= 2 x floor + 0.2 s = ${fmtMs(limit)}`,
      met,
      ...(met ? {} : { comment: `over by ${fmtMs(r.fleet.median - limit)}; ${bottleneck(r)}` }),
    });
  }

  for (const t of targets)
    console.log(`${t.met ? 'met   ' : 'MISSED'} ${t.what}: ${t.measured}, target ${t.target}`);

  const tables: ResultTable[] = [
    {
      title: 'Convergence: fleetctl start until list-units shows all active/running, vs systemctl',
      columns: [
        'units',
        'fleet median',
        'fleet p90',
        'fleet min / max',
        'spread',
        'list-units confirmed (median)',
        'fleetctl returned (median)',
        'floor median',
        'floor p90',
        'fleet / floor',
        '<= 2 x floor + 0.2 s',
      ],
      rows: results.map((r) => [
        r.n,
        fmtMs(r.fleet.median),
        fmtMs(r.fleet.p90),
        `${fmtMs(r.fleet.min)} / ${fmtMs(r.fleet.max)}`,
        fmtMs(r.fleet.spread),
        fmtMs(r.listed.median),
        fmtMs(r.returned.median),
        fmtMs(r.floor.median),
        fmtMs(r.floor.p90),
        `${(r.fleet.median / r.floor.median).toFixed(2)}x`,
        r.fleet.median <= bound(r) ? 'yes' : `no (+${fmtMs(r.fleet.median - bound(r))})`,
      ]),
    },
    {
      title: 'Where the time goes (one traced run per size, not counted; ms since t0)',
      columns: [
        'units',
        'all submitted',
        'all desired launched',
        'all placed',
        'all active/running',
        'fleetctl returned',
        'fleetctl requests (to desired launched)',
        'engine (to placed)',
        'agents + systemd + report (to active/running)',
      ],
      rows: results.map((r) => {
        const p = phaseSplit(r);
        return [
          r.n,
          fmtMs(r.traced.submittedMs),
          fmtMs(r.traced.desiredMs),
          fmtMs(r.traced.placedMs),
          fmtMs(r.traced.listedMs),
          fmtMs(r.traced.returnedMs),
          fmtMs(p.fleetctl),
          fmtMs(p.engine),
          fmtMs(p.agents),
        ];
      }),
    },
  ];
  for (const t of tables) {
    console.log(`\n${t.title}`);
    for (const row of [t.columns, ...t.rows]) console.log(`  ${row.join('\t')}`);
  }

  saveResult({
    name: 'convergence',
    title: 'Convergence on real systemd (3 machines) vs the systemctl floor',
    durationMs: performance.now() - began,
    params: {
      machines: MACHINES,
      runs: RUNS,
      sizes: SIZES.join(','),
      listPollMs: LIST_POLL_MS,
      warmUpRounds: 1,
      settleMs: SETTLE_MS,
    },
    method:
      `A ${MACHINES}-machine FleetCluster (etcd on the host, fleetd in each systemd-nspawn machine, default ` +
      'configuration). Per size and run, alternately: **fleet** — from t0 the built fleetctl runs as its own ' +
      'process, `fleetctl start <N unit files>` (it blocks until every unit is launched and systemd reports it ' +
      'active); once it returns, the benchmark runs `fleetctl list-units` (in-process, every 25 ms) until all N ' +
      'rows read active/running; the figure is that moment. Nothing else talks to fleetd during a measured run. ' +
      'Units are single-process `sleep infinity` services with names unique per run. Then `fleetctl destroy` and ' +
      'a wait until no machine has them (not timed). **floor** — the same number of units on the same machines ' +
      "as fleet placed them, started directly: one `sh -c` per machine, all machines at once, exec'd from the " +
      'host (the exec is counted): write the unit files to /run/systemd/system, `systemctl daemon-reload`, one ' +
      '`systemctl start` of them all, poll `systemctl is-active` until all are active; the figure is until the ' +
      'last machine is done. After the measured runs of a size, one more fleet run (not counted) is traced: ' +
      'list-units (every 25 ms) and list-unit-files (every 50 ms), both on a machine that is neither m1 nor the ' +
      'engine leader, are polled all along to date when all units were submitted, set launched, placed and ' +
      'running, to split the time between fleetctl, the engine and the agents. ' +
      `Every run, fleet or floor, starts after ${SETTLE_MS / 1000} s of quiet, so that the previous run's teardown ` +
      '(which goes on for a few seconds after systemd lists none of its units) is not charged to it. ' +
      `One warm-up round (1 unit, fleet and floor) before the first size is not counted. ` +
      `${RUNS} runs per size; median, p90 and min/max over them.`,
    tables,
    targets,
    notes: [
      `fleetctl as a process costs ${fmtMs(startup.median)} before it sends a request (median of 5 ` +
        '`fleetctl version`: node start-up and module loading); it is inside every fleet figure.',
      'Reading the phases: until "all submitted" fleetctl starts as a process, reads the registry (one list) ' +
        'and creates the units (one PUT each); until "all desired launched" it waits for them to read inactive ' +
        '(one list per poll) and sets each launched (one PUT each). fleetd answers concurrent unit PUTs about as ' +
        'fast as consecutive ones, so both phases grow with N. The agents start new plain services without a ' +
        'daemon-reload (systemd loads them on demand); the floor reloads once per machine.',
      ...results
        .filter((r) => r.n >= 50)
        .map(
          (r) =>
            `At ${r.n} units fleetctl needed ${fmtMs(r.traced.desiredMs - startup.median)} after its start-up to create ` +
            `them and set them launched (traced run): ${((r.traced.desiredMs - startup.median) / r.n).toFixed(1)} ms ` +
            "per unit for two PUTs (create, then set launched, as fleet's protocol has it) and the wait between them. " +
            'fleetd answers them while the whole lab (three fleetds, three systemds and etcd, all busy placing and ' +
            'starting the units) shares 2 cores; this is the bottleneck where the floor target is missed. Sending ' +
            '64 requests at once instead of 16 was slower in a trial.',
        ),
      'Placement per run (units on m1/m2/m3): ' +
        results.map((r) => `${r.n}: ${r.placements.map((p) => p.join('/')).join(', ')}`).join('; ') +
        '.',
    ],
    series: [
      {
        label: 'fleet-ts (fleetctl start)',
        points: results.map((r) => ({ x: r.n, y: r.fleet.median, min: r.fleet.min, max: r.fleet.max })),
      },
      {
        label: 'systemctl floor',
        points: results.map((r) => ({ x: r.n, y: r.floor.median, min: r.floor.min, max: r.floor.max })),
      },
    ],
  });
}

function absoluteTarget(what: string, r: SizeResult, limitMs: number): TargetCheck {
  const met = r.fleet.median <= limitMs;
  return {
    what: `${what}, fleetctl start until all active/running (median)`,
    measured: fmtMs(r.fleet.median),
    target: `<= ${fmtMs(limitMs)}`,
    met,
    ...(met ? {} : { comment: `over by ${fmtMs(r.fleet.median - limitMs)}; ${bottleneck(r)}` }),
  };
}

/** The medians split into who spends them: fleetctl's requests, the engine, the agents. */
function phaseSplit(r: SizeResult): { fleetctl: number; engine: number; agents: number } {
  const t = r.traced;
  return { fleetctl: t.desiredMs, engine: t.placedMs - t.desiredMs, agents: t.listedMs - t.placedMs };
}

/** Where the time of a missed target goes, as this benchmark measured it. */
function bottleneck(r: SizeResult): string {
  const p = phaseSplit(r);
  const parts = [
    { what: 'fleetctl (process start, creating the units, setting them launched)', ms: p.fleetctl },
    { what: 'the engine placing them', ms: p.engine },
    { what: 'the agents (unit files, daemon-reload, start) and their state reports', ms: p.agents },
    { what: 'fleetctl noticing (its poll) and exiting', ms: r.traced.returnedMs - r.traced.listedMs },
  ].filter((x) => Number.isFinite(x.ms));
  const worst = [...parts].sort((a, b) => b.ms - a.ms)[0];
  return (
    `traced run: ${parts.map((x) => `${x.what} ${fmtMs(x.ms)}`).join(', ')}; systemctl alone ${fmtMs(r.floor.median)}. ` +
    (worst === undefined ? '' : `Largest share: ${worst.what}.`)
  );
}

runBench(main);

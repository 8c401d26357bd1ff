/**
 * The packaged executable (npm run package): its size, the size of the .deb and .tar.gz, and the
 * start-up of `fleetctl version` against the same command from a checkout and against Node's
 * own start-up (`node -e 0`), all run alternately in one loop so that they see the same load.
 * fleetd's idle RSS as packaged is the idle benchmark's figure: the lab runs the package.
 *
 *   node dist/bench/package.js [RUNS]      (after npm run package)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { artifactNames, DEFAULT_OUT_DIR, packageVersion } from '../packaging/artifacts.js';
import { repoRoot } from '../systemd-fixtures/repo-root.js';
import { saveResult, runBench, type TargetCheck } from './lib/report.js';

const RUNS = Number(process.argv[2] ?? 40);
const START_TARGET_MS = 60;

/** CPU time (user + system) of this process's waited-for children so far, in ms (/proc/self/stat). */
function childrenCpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
  // After "pid (comm) ": state is field 3, cutime field 16 and cstime field 17 (1-based).
  const ticks = Number(fields[16 - 3]) + Number(fields[17 - 3]);
  return (ticks * 1000) / 100;
}

interface Sample {
  readonly wall: number[];
  cpu: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
const ms = (value: number): string => `${value.toFixed(0)} ms`;

runBench(() => {
  const started = performance.now();
  const names = artifactNames(packageVersion());
  const fleetctl = join(DEFAULT_OUT_DIR, 'fleetctl');
  const commands: Record<string, readonly string[]> = {
    'packaged fleetctl version': [fleetctl, 'version'],
    'fleetctl version from a checkout (node dist/fleetctl/main.js)': [
      process.execPath,
      join(repoRoot(), 'dist/fleetctl/main.js'),
      'version',
    ],
    'node -e 0 (Node itself)': [process.execPath, '-e', '0'],
  };
  const samples = new Map<string, Sample>(Object.keys(commands).map((k) => [k, { wall: [], cpu: 0 }]));
  for (let i = 0; i < RUNS + 3; i++) {
    for (const [label, argv] of Object.entries(commands)) {
      const [cmd = '', ...args] = argv;
      const cpuBefore = childrenCpuMs();
      const t0 = performance.now();
      const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const wall = performance.now() - t0;
      if (r.status !== 0)
        throw new Error(`${argv.join(' ')} exited ${String(r.status)}: ${String(r.stderr)}`);
      const sample = samples.get(label);
      if (sample !== undefined && i >= 3) {
        sample.wall.push(wall);
        sample.cpu += childrenCpuMs() - cpuBefore;
      }
    }
  }
  const rows = [...samples.entries()].map(([label, s]) => [
    label,
    ms(median(s.wall)),
    ms(Math.min(...s.wall)),
    ms(s.cpu / RUNS),
  ]);
  for (const row of rows) console.log(row.join('  '));
  const packaged = samples.get('packaged fleetctl version');
  const bare = samples.get('node -e 0 (Node itself)');
  const wallMedian = median(packaged?.wall ?? []);
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const targets: TargetCheck[] = [
    {
      what: '`fleetctl version` start-up, packaged executable (median wall time)',
      measured: ms(wallMedian),
      target: `< ${START_TARGET_MS} ms`,
      met: wallMedian < START_TARGET_MS,
      comment:
        wallMedian < START_TARGET_MS
          ? undefined
          : `missed by ${ms(wallMedian - START_TARGET_MS)}; Node's own start-up (node -e 0) took ${ms(median(bare?.wall ?? []))} in the same loop (load average ${load}): the bundle and its code cache leave ${ms(wallMedian - median(bare?.wall ?? []))} over Node itself`,
    },
  ];
  saveResult({
    name: 'package',
    title: 'Packaged executable',
    durationMs: performance.now() - started,
    params: { runs: RUNS, version: packageVersion(), loadAverage: load },
    method:
      'Sizes of the files `npm run package` writes to dist/package/. Start-up: each command run ' +
      `${RUNS} times in turns (after 3 warm-up rounds), wall time per run and CPU time (user + system, ` +
      "from the children's times in /proc/self/stat) averaged. fleetd's RSS as packaged: see the idle section, whose lab runs the package.",
    tables: [
      {
        title: 'Files',
        columns: ['file', 'size'],
        rows: [
          [
            'dist/package/fleet-ts (the executable: Node 20 with fleetd and fleetctl)',
            mb(statSync(join(DEFAULT_OUT_DIR, 'fleet-ts')).size),
          ],
          [names.deb, mb(statSync(join(DEFAULT_OUT_DIR, names.deb)).size)],
          [names.tar, mb(statSync(join(DEFAULT_OUT_DIR, names.tar)).size)],
        ],
      },
      { title: 'Start-up', columns: ['command', 'median wall', 'fastest wall', 'CPU per run'], rows },
    ],
    targets,
    notes: [
      'The executable is the node binary of the build machine (stripped) with the bundle and its V8 code cache injected; most of its size is Node itself.',
    ],
  });
});

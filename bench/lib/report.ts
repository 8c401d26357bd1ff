/**
 * The result protocol of the benchmarks: every benchmark prints its figures as it goes and, at
 * the end, saves one `BenchResult` as `bench/results/<name>.json`. `bench/run-all.ts` runs them
 * all and renders `bench/RESULTS.md` (and the convergence chart) from those files, so a single
 * benchmark can be re-run alone and the page regenerated.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { repoRoot } from '../../systemd-fixtures/repo-root.js';

/** One row of a target check: what was measured against what we promised. */
export interface TargetCheck {
  /** What is measured, e.g. "1 unit, fleetctl start to active/running (median)". */
  readonly what: string;
  /** The measured figure, with its unit, e.g. "412 ms". */
  readonly measured: string;
  /** The target, e.g. "<= 500 ms". */
  readonly target: string;
  readonly met: boolean;
  /** When missed: by how much and why (the bottleneck). Optional context otherwise. */
  readonly comment?: string;
}

/** A table of figures: rows of cells, already formatted or plain numbers. */
export interface ResultTable {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | number)[])[];
}

/** One point series for a chart: x (e.g. unit count) against y values in ms. */
export interface ChartSeries {
  readonly label: string;
  /** Each point: x, median y, and optionally the lowest and highest y (the spread). */
  readonly points: readonly {
    readonly x: number;
    readonly y: number;
    readonly min?: number;
    readonly max?: number;
  }[];
}

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly os: string;
  readonly node: string;
  readonly systemd: string;
  readonly etcd: string;
}

export interface BenchResult {
  /** File name stem and section key, e.g. "convergence". */
  readonly name: string;
  /** Section title in RESULTS.md. */
  readonly title: string;
  /** ISO time the benchmark finished. */
  readonly date: string;
  readonly machine: MachineInfo;
  /** Wall time of the whole benchmark. */
  readonly durationMs: number;
  /** What it ran with (sizes, runs, TTLs...). */
  readonly params: Readonly<Record<string, string | number | boolean>>;
  /** How it measures, one paragraph (markdown). */
  readonly method: string;
  readonly tables: readonly ResultTable[];
  readonly targets: readonly TargetCheck[];
  /** Free remarks: anomalies, bottlenecks, caveats (markdown, one per item). */
  readonly notes: readonly string[];
  /** For charts (only convergence has one today). */
  readonly series?: readonly ChartSeries[];
}

/** Where results are saved; overridable for tests with FLEET_BENCH_RESULTS. */
export function resultsDir(): string {
  return process.env.FLEET_BENCH_RESULTS ?? path.join(repoRoot(), 'bench', 'results');
}

function firstLine(cmd: string, args: readonly string[]): string {
  try {
    return (
      execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5_000 })
        .split('\n')[0]
        ?.trim() ?? 'unknown'
    );
  } catch {
    return 'unknown';
  }
}

function osName(): string {
  try {
    const text = execFileSync('cat', ['/etc/os-release'], { encoding: 'utf8' });
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text)?.[1] ?? os.type();
  } catch {
    return os.type();
  }
}

/** The machine the figures come from. */
export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    kernel: os.release(),
    os: osName(),
    node: process.version,
    systemd: firstLine('systemctl', ['--version']),
    etcd: firstLine('etcd', ['--version']),
  };
}

/** Saves `result` (date and machine filled in) as `<resultsDir>/<name>.json`; returns the path. */
export function saveResult(result: Omit<BenchResult, 'date' | 'machine'>): string {
  const full: BenchResult = { ...result, date: new Date().toISOString(), machine: machineInfo() };
  const dir = resultsDir();
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${result.name}.json`);
  writeFileSync(file, `${JSON.stringify(full, null, 2)}\n`);
  console.log(`\nsaved ${path.relative(process.cwd(), file) || file}`);
  return file;
}

/**
 * Runs a benchmark's `main` and exits when it is done: 0, or 1 when it threw (printed). The exit
 * is explicit because a closed etcd3 client can leave a handle that keeps Node's loop alive, and
 * `npm run bench` waits for each benchmark's process to end.
 */
export function runBench(main: () => Promise<void> | void): void {
  Promise.resolve()
    .then(main)
    .then(
      () => {
        process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
      },
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
}

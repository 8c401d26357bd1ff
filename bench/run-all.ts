/**
 * `npm run bench`: runs every benchmark, one after the other (they would disturb each other's
 * figures), each in its own Node process with its output passed through, then rewrites
 * `bench/RESULTS.md` and the convergence chart `bench/convergence.svg` from the results they saved
 * in `bench/results/`.
 *
 *   node dist/bench/run-all.js                   all of them (about 20 minutes; the lab ones need root)
 *   node dist/bench/run-all.js --only idle,scale only these, then render with every saved result
 *   node dist/bench/run-all.js --render          render only, from the saved results
 *
 * Exits 1 when a benchmark failed (the page then says which, and keeps its earlier figures).
 * Missed targets do not fail the run: the page reports them.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { repoRoot } from '../systemd-fixtures/repo-root.js';
import { resultsDir, type BenchResult } from './lib/report.js';
import { convergenceChart, renderResultsMarkdown } from './render.js';

interface Bench {
  readonly name: string;
  readonly script: string;
  readonly nodeArgs?: readonly string[];
  readonly args?: readonly string[];
}

/** In the order they run: the pure and in-process ones first, the labs last. */
export const BENCHES: readonly Bench[] = [
  { name: 'scheduler', script: 'scheduler.js' },
  { name: 'package', script: 'package.js' },
  { name: 'agent-memory', script: 'agent-memory.js', nodeArgs: ['--expose-gc'] },
  { name: 'engine-etcd', script: 'engine-etcd.js' },
  { name: 'scale', script: 'scale.js' },
  { name: 'convergence', script: 'convergence.js' },
  { name: 'idle', script: 'idle.js' },
  { name: 'failover', script: 'failover.js' },
];

const CHART_FILE = 'convergence.svg';

function runOne(bench: Bench): Promise<number> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [...(bench.nodeArgs ?? []), path.join(here, bench.script), ...(bench.args ?? [])],
      { stdio: 'inherit' },
    );
    // Passed on, so an interrupted run does not leave a lab or an etcd behind.
    const forward = (signal: NodeJS.Signals): void => {
      child.kill(signal);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? (signal === null ? 1 : 128));
    });
    child.on('error', () => {
      resolve(1);
    });
  });
}

/** Every saved result, in any order; unreadable files are reported and skipped. */
export function loadResults(dir: string = resultsDir()): BenchResult[] {
  if (!existsSync(dir)) return [];
  const results: BenchResult[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    try {
      results.push(JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as BenchResult);
    } catch (err) {
      console.error(`skipping ${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return results;
}

/** Writes RESULTS.md and the chart beside it; returns the files written. */
export function render(failed: readonly string[] = []): string[] {
  const benchDir = path.join(repoRoot(), 'bench');
  const results = loadResults();
  const written: string[] = [];
  const convergence = results.find((r) => r.name === 'convergence');
  const svg = convergence === undefined ? undefined : convergenceChart(convergence);
  if (svg !== undefined) {
    writeFileSync(path.join(benchDir, CHART_FILE), svg);
    written.push(path.join(benchDir, CHART_FILE));
  }
  const md = renderResultsMarkdown({
    results,
    failed,
    ...(svg === undefined ? {} : { chartFile: CHART_FILE }),
  });
  writeFileSync(path.join(benchDir, 'RESULTS.md'), md);
  written.push(path.join(benchDir, 'RESULTS.md'));
  return written;
}

function parseArgs(argv: readonly string[]): { only?: Set<string>; renderOnly: boolean } {
  let only: Set<string> | undefined;
  let renderOnly = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--render') renderOnly = true;
    else if (a === '--only' || a?.startsWith('--only=') === true) {
      const value = a === '--only' ? argv[++i] : a.slice('--only='.length);
      if (value === undefined || value === '')
        throw new Error('--only needs a comma-separated list of benchmarks');
      only = new Set(value.split(',').map((s) => s.trim()));
      const unknown = [...only].filter((n) => !BENCHES.some((b) => b.name === n));
      if (unknown.length > 0) {
        throw new Error(
          `unknown benchmark ${unknown.join(', ')}; known: ${BENCHES.map((b) => b.name).join(', ')}`,
        );
      }
    } else if (a === '--help' || a === '-h') {
      console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0]);
      process.exit(0);
    } else throw new Error(`unknown argument ${a ?? ''}; see --help`);
  }
  return { ...(only === undefined ? {} : { only }), renderOnly };
}

async function main(): Promise<void> {
  const { only, renderOnly } = parseArgs(process.argv.slice(2));
  const failed: string[] = [];
  if (!renderOnly) {
    const selected = BENCHES.filter((b) => only === undefined || only.has(b.name));
    for (const bench of selected) {
      const began = Date.now();
      console.log(`\n=== ${bench.name} ===\n`);
      const code = await runOne(bench);
      const took = ((Date.now() - began) / 1000).toFixed(0);
      if (code !== 0) {
        failed.push(bench.name);
        console.log(`\n=== ${bench.name}: FAILED (exit ${code}) after ${took} s ===`);
      } else console.log(`\n=== ${bench.name}: done in ${took} s ===`);
    }
  }
  for (const file of render(failed)) console.log(`wrote ${path.relative(process.cwd(), file) || file}`);
  if (failed.length > 0) {
    console.log(`failed: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 2;
  });
}

/**
 * Renders the benchmark results (`bench/results/*.json`, see lib/report.ts) as `bench/RESULTS.md`
 * and the convergence chart as an SVG. Pure: strings in, strings out.
 */
import type { BenchResult, ChartSeries, MachineInfo, ResultTable, TargetCheck } from './lib/report.js';

/** The order of sections in RESULTS.md; unknown names follow, alphabetically. */
export const SECTION_ORDER = [
  'convergence',
  'failover',
  'idle',
  'scale',
  'scheduler',
  'engine-etcd',
  'agent-memory',
] as const;

/** What fleet v1.0.0 did in the same kind of lab (from the issue that asked for these benchmarks). */
export const FLEET_V1_FIGURES: readonly (readonly [string, string])[] = [
  ['1 unit, start to active', 'about 4-5 s'],
  ['10 units', '5-8 s'],
  ['50 units', '6-9 s (one run took 28 s)'],
  ["a killed machine's units active elsewhere", 'about 25 s'],
  ['etcd reads per idle machine', 'about 370 per minute'],
  ['documented ceiling', 'about 100 machines, 1,000 units'],
];

export interface RenderInput {
  readonly results: readonly BenchResult[];
  /** Benchmarks that failed in the run that rendered this page (their figures may be older). */
  readonly failed?: readonly string[];
  /** File name of the convergence chart, beside RESULTS.md, when there is one. */
  readonly chartFile?: string;
}

function orderOf(name: string): number {
  const i = (SECTION_ORDER as readonly string[]).indexOf(name);
  return i === -1 ? SECTION_ORDER.length : i;
}

export function sortResults(results: readonly BenchResult[]): BenchResult[] {
  return [...results].sort((a, b) => orderOf(a.name) - orderOf(b.name) || a.name.localeCompare(b.name));
}

/** Escapes a table cell: pipes and newlines would break the row. */
export function cell(value: string | number): string {
  return String(value).replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

export function markdownTable(
  columns: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): string {
  const head = `| ${columns.map(cell).join(' | ')} |`;
  const rule = `|${columns.map(() => '---').join('|')}|`;
  const body = rows.map((r) => `| ${columns.map((_, i) => cell(r[i] ?? '')).join(' | ')} |`);
  return [head, rule, ...body].join('\n');
}

function machineLine(m: MachineInfo): string {
  return (
    `${m.cores} × ${m.cpu}, ${m.memoryGiB} GiB RAM; ${m.os}, kernel ${m.kernel}; ` +
    `Node ${m.node}; ${m.systemd}; ${m.etcd}`
  );
}

function sameMachine(a: MachineInfo, b: MachineInfo): boolean {
  return machineLine(a) === machineLine(b);
}

function verdict(t: TargetCheck): string {
  return t.met ? 'met' : '**missed**';
}

function tableSection(t: ResultTable): string {
  return `**${t.title}**\n\n${markdownTable(t.columns, t.rows)}`;
}

/** Target checks as a table; with a benchmark column when the rows name their benchmark. */
function targetsTable(rows: readonly { readonly bench?: string; readonly t: TargetCheck }[]): string {
  const named = rows.some((r) => r.bench !== undefined);
  return markdownTable(
    [...(named ? ['benchmark'] : []), 'what', 'measured', 'target', 'verdict', 'comment'],
    rows.map(({ bench, t }) => [
      ...(named ? [bench ?? ''] : []),
      t.what,
      t.measured,
      t.target,
      verdict(t),
      t.comment ?? '',
    ]),
  );
}

function day(iso: string): string {
  return iso.slice(0, 10);
}

/** The whole RESULTS.md page. */
export function renderResultsMarkdown(input: RenderInput): string {
  const results = sortResults(input.results);
  const failed = new Set(input.failed ?? []);
  const out: string[] = [];
  out.push('# Benchmark results');
  out.push('');
  out.push(
    'Written by `npm run bench` (`bench/run-all.ts`) from `bench/results/*.json`; do not edit by hand. ' +
      'Each benchmark prints its figures while it runs and saves them there; ' +
      '`node dist/bench/run-all.js --render` rebuilds this page from the saved files alone.',
  );
  out.push('');
  if (results.length === 0) {
    out.push('No results yet: run `npm run bench`.');
    return `${out.join('\n')}\n`;
  }
  const first = results[0];
  const dates = results.map((r) => r.date).sort();
  if (first !== undefined) {
    out.push(`- **Machine:** ${machineLine(first.machine)}`);
    const others = results.filter((r) => !sameMachine(r.machine, first.machine));
    for (const r of others) out.push(`  - except ${r.name}: ${machineLine(r.machine)}`);
  }
  out.push(
    `- **Date:** ${day(dates[0] ?? '')}${day(dates[0] ?? '') === day(dates.at(-1) ?? '') ? '' : ` to ${day(dates.at(-1) ?? '')}`}` +
      ` (each section gives its own time)`,
  );
  if (failed.size > 0) {
    out.push(
      `- **Failed in the latest run:** ${[...failed].sort().join(', ')}. ` +
        'Their sections below, if any, are from an earlier run (see their dates).',
    );
  }
  out.push('');

  const allTargets = results.flatMap((r) => r.targets.map((t) => ({ r, t })));
  if (allTargets.length > 0) {
    const met = allTargets.filter(({ t }) => t.met).length;
    out.push('## Targets');
    out.push('');
    out.push(`${met} of ${allTargets.length} targets met.`);
    out.push('');
    out.push(targetsTable(allTargets.map(({ r, t }) => ({ bench: r.name, t }))));
    out.push('');
  }

  out.push('## fleet v1.0.0, for comparison');
  out.push('');
  out.push('Measured in the same kind of lab on real systemd (figures from the issue that set the targets):');
  out.push('');
  out.push(markdownTable(['what', 'fleet v1.0.0'], FLEET_V1_FIGURES));
  out.push('');

  for (const r of results) {
    out.push(`## ${r.title}`);
    out.push('');
    const stale = failed.has(r.name)
      ? ' — **from an earlier run: the latest run of this benchmark failed**'
      : '';
    out.push(
      `\`${r.name}\`, ${r.date.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}, took ${(r.durationMs / 1000).toFixed(0)} s${stale}.`,
    );
    const params = Object.entries(r.params);
    if (params.length > 0) out.push(`Parameters: ${params.map(([k, v]) => `${k}=${String(v)}`).join(', ')}.`);
    if (!sameMachine(r.machine, first?.machine ?? r.machine)) out.push(`Machine: ${machineLine(r.machine)}.`);
    out.push('');
    out.push(r.method);
    out.push('');
    if (r.name === 'convergence' && r.series !== undefined && input.chartFile !== undefined) {
      out.push(`![Convergence time against unit count](${input.chartFile})`);
      out.push('');
    }
    for (const t of r.tables) {
      out.push(tableSection(t));
      out.push('');
    }
    if (r.targets.length > 0) {
      out.push('**Targets**');
      out.push('');
      out.push(targetsTable(r.targets.map((t) => ({ t }))));
      out.push('');
    }
    if (r.notes.length > 0) {
      out.push('**Notes**');
      out.push('');
      for (const n of r.notes) out.push(`- ${n}`);
      out.push('');
    }
  }
  for (const name of [...failed].sort()) {
    if (results.some((r) => r.name === name)) continue;
    out.push(`## ${name}`);
    out.push('');
    out.push('**Failed in the latest run and has no earlier result.** See the run log.');
    out.push('');
  }
  return `${out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}

function niceStep(range: number, ticks: number): number {
  const raw = range / Math.max(1, ticks);
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];
const DASHED = /target|bound/i;

export interface ChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly width?: number;
  readonly height?: number;
}

/**
 * A line chart as a standalone SVG: one polyline per series (dashed when its label says "target"),
 * a vertical bar from min to max at each point (the spread), axes with round ticks, a legend.
 * y values are milliseconds and are shown in seconds.
 */
export function renderLineChartSvg(series: readonly ChartSeries[], options: ChartOptions): string {
  const width = options.width ?? 720;
  const height = options.height ?? 440;
  const left = 70;
  const right = 20;
  const top = 50;
  const bottom = 100;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const points = series.flatMap((s) => s.points);
  const xMax = Math.max(1, ...points.map((p) => p.x));
  const yMaxMs = Math.max(1, ...points.map((p) => Math.max(p.y, p.max ?? p.y)));
  const xStep = niceStep(xMax, 10);
  const xTop = Math.ceil(xMax / xStep) * xStep;
  const yStep = niceStep(yMaxMs / 1000, 6);
  const yTop = Math.ceil(yMaxMs / 1000 / yStep) * yStep;
  const sx = (x: number): number => left + (x / xTop) * plotW;
  const sy = (ms: number): number => top + plotH - (ms / 1000 / yTop) * plotH;
  const f = (n: number): string => n.toFixed(1);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  parts.push(
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(options.title)}</text>`,
  );
  for (let y = 0; y <= yTop + 1e-9; y += yStep) {
    const py = sy(y * 1000);
    parts.push(`<line x1="${left}" y1="${f(py)}" x2="${left + plotW}" y2="${f(py)}" stroke="#e5e5e5"/>`);
    const label = Number(y.toFixed(3)).toString();
    parts.push(`<text x="${left - 8}" y="${f(py + 4)}" text-anchor="end">${label}</text>`);
  }
  for (let x = 0; x <= xTop + 1e-9; x += xStep) {
    const px = sx(x);
    parts.push(
      `<line x1="${f(px)}" y1="${top + plotH}" x2="${f(px)}" y2="${top + plotH + 5}" stroke="#333"/>`,
    );
    parts.push(
      `<text x="${f(px)}" y="${top + plotH + 19}" text-anchor="middle">${Number(x.toFixed(3))}</text>`,
    );
  }
  parts.push(
    `<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#333"/>`,
    `<text x="${left + plotW / 2}" y="${top + plotH + 40}" text-anchor="middle">${esc(options.xLabel)}</text>`,
    `<text transform="translate(18 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(options.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length] ?? '#000';
    const dash = DASHED.test(s.label) ? ' stroke-dasharray="6 4"' : '';
    const sorted = [...s.points].sort((a, b) => a.x - b.x);
    if (sorted.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${sorted.map((p) => `${f(sx(p.x))},${f(sy(p.y))}`).join(' ')}"/>`,
      );
    }
    for (const p of sorted) {
      if (p.min !== undefined && p.max !== undefined) {
        const px = f(sx(p.x));
        parts.push(
          `<line x1="${px}" y1="${f(sy(p.min))}" x2="${px}" y2="${f(sy(p.max))}" stroke="${color}" stroke-width="1.5"/>`,
          `<line x1="${f(sx(p.x) - 4)}" y1="${f(sy(p.min))}" x2="${f(sx(p.x) + 4)}" y2="${f(sy(p.min))}" stroke="${color}"/>`,
          `<line x1="${f(sx(p.x) - 4)}" y1="${f(sy(p.max))}" x2="${f(sx(p.x) + 4)}" y2="${f(sy(p.max))}" stroke="${color}"/>`,
        );
      }
      if (dash === '') parts.push(`<circle cx="${f(sx(p.x))}" cy="${f(sy(p.y))}" r="3.5" fill="${color}"/>`);
    }
    const ly = top + plotH + 58 + Math.floor(i / 2) * 18;
    const lx = left + (i % 2) * (plotW / 2);
    parts.push(
      `<line x1="${lx}" y1="${ly - 4}" x2="${lx + 24}" y2="${ly - 4}" stroke="${color}" stroke-width="2"${dash}/>`,
      `<text x="${lx + 30}" y="${ly}">${esc(s.label)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/**
 * The convergence chart: the result's series, plus the target line derived from the floor series
 * (2 × floor + 0.2 s) when there is one.
 */
export function convergenceChart(result: BenchResult): string | undefined {
  const series = result.series;
  if (series === undefined || series.length === 0) return undefined;
  const floor = series.find((s) => /floor/i.test(s.label));
  const withTarget: ChartSeries[] = [...series];
  if (floor !== undefined && !series.some((s) => DASHED.test(s.label))) {
    withTarget.push({
      label: 'target: 2 × floor + 0.2 s',
      points: floor.points.map((p) => ({ x: p.x, y: 2 * p.y + 200 })),
    });
  }
  return renderLineChartSvg(withTarget, {
    title: `Start to all active/running (median; bars: min to max) — ${day(result.date)}`,
    xLabel: 'units started at once',
    yLabel: 'seconds',
  });
}

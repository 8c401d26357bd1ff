import { expect } from 'chai';
import { describe, it } from 'mocha';

import type { BenchResult } from '../../bench/lib/report.js';
import { fmtMs, quantile, summarize } from '../../bench/lib/stats.js';
import {
  cell,
  convergenceChart,
  markdownTable,
  renderLineChartSvg,
  renderResultsMarkdown,
  sortResults,
} from '../../bench/render.js';

const machine = {
  cpu: 'Test CPU',
  cores: 2,
  memoryGiB: 4,
  kernel: '6.1.0',
  os: 'Debian GNU/Linux 12 (bookworm)',
  node: 'v20.20.0',
  systemd: 'systemd 252',
  etcd: 'etcd Version: 3.4.23',
};

function result(name: string, extra: Partial<BenchResult> = {}): BenchResult {
  return {
    name,
    title: `Title of ${name}`,
    date: '2026-11-25T10:00:00.000Z',
    machine,
    durationMs: 12_345,
    params: { runs: 5 },
    method: `How ${name} measures.`,
    tables: [{ title: `${name} figures`, columns: ['a', 'b'], rows: [['x', 1]] }],
    targets: [],
    notes: [],
    ...extra,
  };
}

describe('bench/render', () => {
  describe('markdownTable', () => {
    it('writes a header, a rule and one row per entry, escaping pipes and newlines', () => {
      const t = markdownTable(['what', 'value'], [['a|b', 'line\nbreak'], ['short']]);
      expect(t.split('\n')).to.deep.equal([
        '| what | value |',
        '|---|---|',
        '| a\\|b | line break |',
        '| short |  |',
      ]);
      expect(cell(3)).to.equal('3');
    });
  });

  describe('renderResultsMarkdown', () => {
    const missed = {
      what: '1 unit (median)',
      measured: '620 ms',
      target: '<= 500 ms',
      met: false,
      comment: 'over by 120 ms: fleetctl start-up',
    };
    const met = { what: '50 units', measured: '1.2 s', target: '<= 1.5 s', met: true };

    it('says when there is nothing to show', () => {
      expect(renderResultsMarkdown({ results: [] })).to.contain('No results yet');
    });

    it('gives the machine, the date, a summary of every target and each section in a fixed order', () => {
      const md = renderResultsMarkdown({
        results: [result('scale'), result('convergence', { targets: [missed, met] }), result('custom')],
        chartFile: 'convergence.svg',
      });
      expect(md).to.contain('2 × Test CPU, 4 GiB RAM; Debian GNU/Linux 12 (bookworm), kernel 6.1.0');
      expect(md).to.contain('**Date:** 2026-11-25');
      expect(md).to.contain('1 of 2 targets met.');
      expect(md).to.contain(
        '| convergence | 1 unit (median) | 620 ms | <= 500 ms | **missed** | over by 120 ms: fleetctl start-up |',
      );
      expect(md).to.contain('| convergence | 50 units | 1.2 s | <= 1.5 s | met |  |');
      expect(md).to.contain('about 25 s'); // fleet v1.0.0's figures for comparison
      const order = ['## Title of convergence', '## Title of scale', '## Title of custom'].map((h) =>
        md.indexOf(h),
      );
      expect(order.every((i) => i > 0)).to.equal(true);
      expect([...order].sort((a, b) => a - b)).to.deep.equal(order);
      expect(md).to.contain('Parameters: runs=5.');
      expect(md).to.contain('took 12 s');
      expect(md).not.to.contain('![Convergence'); // no series: no chart
      expect(md).not.to.match(/\n\n\n/);
      expect(md.endsWith('\n')).to.equal(true);
    });

    it('links the chart in the convergence section only when it has series and a chart file', () => {
      const conv = result('convergence', { series: [{ label: 'fleet-ts', points: [{ x: 1, y: 300 }] }] });
      expect(renderResultsMarkdown({ results: [conv], chartFile: 'convergence.svg' })).to.contain(
        '![Convergence time against unit count](convergence.svg)',
      );
      expect(renderResultsMarkdown({ results: [conv] })).not.to.contain('![Convergence');
    });

    it('marks benchmarks that failed in the latest run, with or without earlier figures', () => {
      const md = renderResultsMarkdown({ results: [result('idle')], failed: ['idle', 'failover'] });
      expect(md).to.contain('**Failed in the latest run:** failover, idle.');
      expect(md).to.contain('from an earlier run: the latest run of this benchmark failed');
      expect(md).to.contain('## failover\n\n**Failed in the latest run and has no earlier result.**');
    });

    it('names a benchmark that ran on another machine', () => {
      const other = result('scale', { machine: { ...machine, cores: 8 } });
      const md = renderResultsMarkdown({ results: [result('convergence'), other] });
      expect(md).to.contain('except scale: 8 × Test CPU');
    });

    it('sorts known sections first, unknown ones after by name', () => {
      const names = sortResults([result('zeta'), result('idle'), result('alpha'), result('convergence')]).map(
        (r) => r.name,
      );
      expect(names).to.deep.equal(['convergence', 'idle', 'alpha', 'zeta']);
    });
  });

  describe('charts', () => {
    const series = [
      {
        label: 'fleet-ts <start>',
        points: [
          { x: 100, y: 1900, min: 1700, max: 2300 },
          { x: 1, y: 420, min: 380, max: 520 },
        ],
      },
      {
        label: 'systemctl floor',
        points: [
          { x: 1, y: 150 },
          { x: 100, y: 1000 },
        ],
      },
    ];

    it('draws one line per series with spread bars, escaped labels and axes that hold every point', () => {
      const svg = renderLineChartSvg(series, { title: 'T & t', xLabel: 'units', yLabel: 'seconds' });
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).to.equal(true);
      expect(svg.trimEnd().endsWith('</svg>')).to.equal(true);
      expect(svg.match(/<polyline/g)).to.have.length(2);
      expect(svg).to.contain('fleet-ts &lt;start&gt;');
      expect(svg).to.contain('T &amp; t');
      // 2.3 s is the highest value: the y axis reaches 2.5 (round ticks), the x axis 100.
      expect(svg).to.contain('>2.5</text>');
      expect(svg).to.contain('>100</text>');
      // Bars from min to max: 3 lines per point with a spread (2 points).
      expect(svg.match(/stroke-width="1.5"/g)).to.have.length(2);
      // Every coordinate is a number.
      expect(svg).not.to.match(/NaN|Infinity/);
    });

    it('adds the target line (2 × floor + 0.2 s) to the convergence chart', () => {
      const svg = convergenceChart(result('convergence', { series }));
      expect(svg).to.be.a('string');
      expect(svg).to.contain('target: 2 × floor + 0.2 s');
      expect(svg?.match(/<polyline/g)).to.have.length(3);
      expect(svg).to.contain('stroke-dasharray');
      expect(convergenceChart(result('convergence'))).to.equal(undefined);
    });
  });

  describe('stats', () => {
    it('interpolates quantiles and summarizes', () => {
      expect(quantile([5, 1, 3], 0.5)).to.equal(3);
      expect(quantile([1, 2, 3, 4], 0.5)).to.equal(2.5);
      expect(quantile([0, 10], 0.9)).to.equal(9);
      expect(quantile([], 0.5)).to.be.NaN;
      expect(summarize([4, 1, 9, 3, 5])).to.deep.equal({
        n: 5,
        median: 4,
        p90: 7.4,
        min: 1,
        max: 9,
        spread: 8,
      });
      expect(fmtMs(412.4)).to.equal('412 ms');
      expect(fmtMs(1234)).to.equal('1.23 s');
      expect(fmtMs(Number.NaN)).to.equal('n/a');
    });
  });
});

import type { Command } from 'commander';
import { systemClock } from '../../lib/clock.js';
import { describeError } from '../../lib/errors.js';
import { EVENT_KINDS } from '../../unit/cluster-events.js';
import { mangleUnitName } from '../../unit/unit-name.js';
import type { ApiEvent } from '../client.js';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';
import { boolFlag, flagSet, stringFlag, stringValue } from '../flags.js';
import { formatTable } from '../table.js';

const UNITS_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `--since`: a duration back from now (`10m`, `1h30m`, `2d`) or an RFC 3339 time. Returns the
 * RFC 3339 time, or undefined when the text is neither.
 */
export function sinceTime(text: string, now: number): string | undefined {
  const t = text.trim();
  if (/^\d{4}-\d\d-\d\dT/.test(t)) {
    const ms = Date.parse(t);
    return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
  }
  if (!/^(\d+(?:\.\d+)?[smhd])+$/.test(t)) return undefined;
  let total = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)([smhd])/g))
    total += Number(m[1]) * (UNITS_MS[m[2] ?? 's'] ?? 0);
  return new Date(now - total).toISOString();
}

/** One event as a table row: time, kind, unit, machine, message. */
function row(e: ApiEvent): string[] {
  return [e.time, e.kind, e.unit ?? '-', e.machine ?? '-', e.message];
}

const HEADER = ['TIME', 'KIND', 'UNIT', 'MACHINE', 'MESSAGE'];

/** How many events `fleetctl status` ends with. */
const STATUS_EVENTS = 5;

/**
 * The end of `fleetctl status UNIT`: the unit's last few events. A fleetd without events (or an
 * error reading them) leaves the status as it is, with a note on stderr.
 */
export async function printRecentEvents(ctx: Context, unit: string): Promise<void> {
  let events: ApiEvent[];
  try {
    ({ events } = await ctx.client().listEvents(new URLSearchParams({ unit })));
  } catch (err) {
    ctx.err(`(events of ${unit} not read: ${describeError(err)})`);
    return;
  }
  const last = events.slice(-STATUS_EVENTS);
  if (last.length === 0) return;
  ctx.write(`\nLast events of ${unit}:\n`);
  ctx.write(formatTable([HEADER, ...last.map(row)]));
}

/** `fleetctl events [UNIT...]`: what the engine and agents decided and saw, oldest first. */
export function registerEvents(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'events',
    summary: 'Print the cluster event history, or follow it',
    usage:
      '[--machine=ID] [--kind=KIND] [--since=10m] [-f|--follow] [--no-legend] [--output=table|json] [UNIT...]',
    description: [
      'Prints what the engine and the agents recorded, oldest first: units placed, moved',
      '(with why), unplaceable, unscheduled, started, stopped, failed, exited, adopted;',
      'machines joined, left, lost; the leader changing. Events are kept for',
      'event_max_age and at most event_history of them (fleetd options).',
      '',
      `Kinds: ${EVENT_KINDS.join(', ')}.`,
      '',
      'What happened to a unit in the last hour:',
      '\tfleetctl events --since 1h web.service',
      '',
      'Follow everything on one machine, one JSON document per event:',
      '\tfleetctl events --follow --machine 2c9a... --output json',
    ].join('\n'),
  });
  stringFlag(cmd, '--machine <id>', 'Only events of this machine.', '');
  stringFlag(cmd, '--kind <kind>', 'Only events of this kind.', '');
  stringFlag(cmd, '--since <when>', 'Only events since a duration ago (10m, 1h) or an RFC 3339 time.', '');
  boolFlag(
    cmd,
    '-f, --follow',
    'After the history, print new events as they are recorded, until interrupted.',
    ['f'],
  );
  boolFlag(cmd, '--no-legend', 'Do not print a legend (column headers).');
  stringFlag(cmd, '--output <mode>', 'Output format: table or json (one JSON document per line).', 'table');
  onRun(cmd, ctx, async (args) => {
    const output = stringValue(cmd, 'output', 'table');
    if (output !== 'table' && output !== 'json') {
      ctx.err(`Invalid --output ${JSON.stringify(output)}: use table or json.`);
      return 1;
    }
    const params = new URLSearchParams();
    for (const arg of args) params.append('unit', mangleUnitName(arg));
    const machine = stringValue(cmd, 'machine');
    if (machine !== '') params.set('machine', machine);
    const kind = stringValue(cmd, 'kind');
    if (kind !== '') params.set('kind', kind);
    const since = stringValue(cmd, 'since');
    if (since !== '') {
      const time = sinceTime(since, systemClock.now());
      if (time === undefined) {
        ctx.err(
          `Invalid --since ${JSON.stringify(since)}: use a duration such as 10m or 1h, or an RFC 3339 time.`,
        );
        return 1;
      }
      params.set('since', time);
    }
    const client = ctx.client();
    const { events, revision } = await client.listEvents(params);
    const legend = flagSet(cmd, 'legend');
    if (output === 'json') for (const e of events) ctx.write(`${JSON.stringify(e)}\n`);
    else ctx.write(formatTable(legend ? [HEADER, ...events.map(row)] : events.map(row)));
    if (!flagSet(cmd, 'follow', ['f'])) return 0;
    params.set('revision', String(revision));
    await client.followEvents(params, (e) => {
      ctx.write(output === 'json' ? `${JSON.stringify(e)}\n` : formatTable([row(e)]));
    });
    return 0;
  });
}

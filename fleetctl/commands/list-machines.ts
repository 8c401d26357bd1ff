import type { Command } from 'commander';
import { describeError } from '../../lib/errors.js';
import type { ApiMachine } from '../client.js';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';
import { dash, orNull, renderList, type FieldDefs } from '../fields.js';
import { addListFlags, listChoices } from '../list-flags.js';
import { machineIdLegend } from '../machines.js';

function metadataText(m: ApiMachine): string {
  const pairs = Object.keys(m.metadata)
    .sort()
    .map((k) => `${k}=${m.metadata[k] ?? ''}`);
  return pairs.length === 0 ? '-' : pairs.join(',');
}

/** list-machines' fields. */
const FIELDS: FieldDefs<ApiMachine> = {
  machine: { table: (m, full) => machineIdLegend(m.id, full), json: (m) => m.id },
  ip: { table: (m) => dash(m.primaryIP), json: (m) => orNull(m.primaryIP) },
  metadata: { table: (m) => metadataText(m), json: (m) => m.metadata },
  state: { table: (m) => m.state ?? 'ready', json: (m) => m.state ?? 'ready' },
};

/** fleet's columns (scripts parse them); `state` is asked for with `--fields`. */
const DEFAULT_FIELDS = 'machine,ip,metadata';

/** `fleetctl list-machines`: the live machines with their IP and metadata. */
export function registerListMachines(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'list-machines',
    summary: 'Enumerate the current hosts in the cluster',
    usage: '[-l|--full] [--no-legend] [--fields] [--output=table|json]',
    description: [
      'Lists all active machines within the cluster. Previously active machines will',
      'not appear in this list.',
      '',
      'For easily parsable output, you can remove the column headers:',
      '\tfleetctl list-machines --no-legend',
      '',
      'Output the list without truncation:',
      '\tfleetctl list-machines --full',
      '',
      'Show whether machines are being drained (ready, draining or drained):',
      '\tfleetctl list-machines --fields machine,ip,state',
    ].join('\n'),
  });
  addListFlags(cmd, DEFAULT_FIELDS, Object.keys(FIELDS));
  onRun(cmd, ctx, async () => {
    const choices = listChoices(cmd, DEFAULT_FIELDS, Object.keys(FIELDS));
    const client = ctx.client();
    let machines: ApiMachine[];
    try {
      machines = await client.listMachines();
    } catch (err) {
      ctx.err(`Error retrieving list of active machines from fleet API (${describeError(err)})`);
      ctx.err('Possible issues:');
      ctx.err('  fleetd is not running, or not reachable at the endpoint');
      ctx.err('  etcd is unhealthy and/or lost quorum');
      return 1;
    }
    ctx.write(renderList(machines, FIELDS, choices.fields, choices));
    return 0;
  });
}

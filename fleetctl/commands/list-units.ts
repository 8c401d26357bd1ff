import type { Command } from 'commander';
import { describeError } from '../../lib/errors.js';
import type { ApiMachine, ApiUnitState } from '../client.js';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';
import { dash, orNull, renderList, type FieldDefs } from '../fields.js';
import { addListFlags, listChoices } from '../list-flags.js';
import { machineFullLegend } from '../machines.js';

interface Row {
  readonly state: ApiUnitState;
  readonly machine: ApiMachine | undefined;
}

/** list-units' fields, in the order fleet lists them as valid. */
const FIELDS: FieldDefs<Row> = {
  active: { table: (r) => dash(r.state.systemdActiveState), json: (r) => orNull(r.state.systemdActiveState) },
  hash: {
    table: (r, full) => dash(full ? r.state.hash : r.state.hash?.slice(0, 7)),
    json: (r) => orNull(r.state.hash),
  },
  load: { table: (r) => dash(r.state.systemdLoadState), json: (r) => orNull(r.state.systemdLoadState) },
  machine: {
    table: (r, full) =>
      r.state.machineID === undefined ? '-' : machineFullLegend(r.state.machineID, r.machine, full),
    json: (r) => orNull(r.state.machineID),
  },
  sub: { table: (r) => dash(r.state.systemdSubState), json: (r) => orNull(r.state.systemdSubState) },
  unit: { table: (r) => r.state.name, json: (r) => r.state.name },
};

const DEFAULT_FIELDS = 'unit,machine,active,sub';

/** `fleetctl list-units`: one row per (unit, machine) that an agent reports systemd state for. */
export function registerListUnits(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'list-units',
    summary: 'List the current state of units in the cluster',
    usage: '[--no-legend] [-l|--full] [--fields] [--output=table|json]',
    description: [
      'Lists the state of all units in the cluster loaded onto a machine: one line per',
      'unit and machine (a global unit has one line per machine it runs on).',
      '',
      'For easily parsable output, you can remove the column headers:',
      '\tfleetctl list-units --no-legend',
      '',
      'Output the list without ellipses:',
      '\tfleetctl list-units --full',
      '',
      'Or, choose the columns to display:',
      '\tfleetctl list-units --fields=unit,machine',
      '',
      'Or print JSON (full values, null for empty ones):',
      '\tfleetctl list-units --output=json',
    ].join('\n'),
  });
  addListFlags(cmd, DEFAULT_FIELDS, Object.keys(FIELDS));
  onRun(cmd, ctx, async () => {
    const choices = listChoices(cmd, DEFAULT_FIELDS, Object.keys(FIELDS));
    const client = ctx.client();
    let rows: Row[];
    try {
      const [states, machines] = await Promise.all([client.listUnitStates(), client.listMachines()]);
      const byId = new Map(machines.map((m) => [m.id, m]));
      rows = states.map((state) => ({
        state,
        machine: state.machineID === undefined ? undefined : byId.get(state.machineID),
      }));
    } catch (err) {
      ctx.err(`Error retrieving list of units from repository: ${describeError(err)}`);
      return 1;
    }
    ctx.write(renderList(rows, FIELDS, choices.fields, choices));
    return 0;
  });
}

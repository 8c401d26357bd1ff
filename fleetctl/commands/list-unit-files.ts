import type { Command } from 'commander';
import { describeError } from '../../lib/errors.js';
import type { ApiMachine, ApiUnit } from '../client.js';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';
import { dash, orNull, renderList, type FieldDef, type FieldDefs } from '../fields.js';
import { addListFlags, listChoices } from '../list-flags.js';
import { machineFullLegend } from '../machines.js';
import { isGlobalUnit, optionsHash, unitDescription } from '../unit-data.js';

interface Row {
  readonly unit: ApiUnit;
  readonly global: boolean;
  readonly hash: string;
  readonly machine: ApiMachine | undefined;
}

const target: FieldDef<Row> = {
  table: (r, full) => {
    if (r.global) return 'global';
    const id = r.unit.machineID;
    return id === undefined ? '-' : machineFullLegend(id, r.machine, full);
  },
  json: (r) => (r.global ? 'global' : orNull(r.unit.machineID)),
};

/** list-unit-files' fields, in the order fleet lists them as valid. */
const FIELDS: FieldDefs<Row> = {
  desc: {
    table: (r) => dash(unitDescription(r.unit.options)),
    json: (r) => orNull(unitDescription(r.unit.options)),
  },
  dstate: { table: (r) => dash(r.unit.desiredState), json: (r) => orNull(r.unit.desiredState) },
  global: { table: (r) => String(r.global), json: (r) => r.global },
  hash: { table: (r, full) => (full ? r.hash : r.hash.slice(0, 7)), json: (r) => r.hash },
  state: {
    table: (r) => (r.global ? '-' : dash(r.unit.currentState)),
    json: (r) => (r.global ? null : orNull(r.unit.currentState)),
  },
  target,
  tmachine: target,
  unit: { table: (r) => r.unit.name, json: (r) => r.unit.name },
};

const DEFAULT_FIELDS = 'unit,hash,dstate,state,target';

/** `fleetctl list-unit-files`: every unit in the cluster with its desired and current state. */
export function registerListUnitFiles(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'list-unit-files',
    summary: 'List the units that exist in the cluster.',
    usage: '[--no-legend] [-l|--full] [--fields] [--output=table|json]',
    description: [
      'Lists all unit files that exist in the cluster (whether or not they are loaded onto',
      'a machine): DSTATE is the desired state, STATE the current one, TARGET the machine',
      'the unit is scheduled on ("global" for a global unit).',
      '',
      'For easily parsable output, you can remove the column headers:',
      '\tfleetctl list-unit-files --no-legend',
      '',
      'Or, choose the columns to display:',
      '\tfleetctl list-unit-files --fields=unit,desc,target',
    ].join('\n'),
  });
  addListFlags(cmd, DEFAULT_FIELDS, Object.keys(FIELDS));
  onRun(cmd, ctx, async () => {
    const choices = listChoices(cmd, DEFAULT_FIELDS, Object.keys(FIELDS));
    if (choices.fields.includes('tmachine'))
      ctx.warn('The "tmachine" field is deprecated. Use "target" instead');
    const client = ctx.client();
    let rows: Row[];
    try {
      const [units, machines] = await Promise.all([client.listUnits(), client.listMachines()]);
      const byId = new Map(machines.map((m) => [m.id, m]));
      rows = units.map((unit) => ({
        unit,
        global: isGlobalUnit(unit.options),
        hash: optionsHash(unit.options),
        machine: unit.machineID === undefined ? undefined : byId.get(unit.machineID),
      }));
    } catch (err) {
      ctx.err(`Error retrieving list of units from repository: ${describeError(err)}`);
      return 1;
    }
    ctx.write(renderList(rows, FIELDS, choices.fields, choices));
    return 0;
  });
}

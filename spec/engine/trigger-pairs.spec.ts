import { expect } from 'chai';
import { describe, it } from 'mocha';

import type { SchedulableUnit } from '../../engine/cluster-snapshot.js';
import { planCluster } from '../../engine/scheduler.js';
import { explainPlan, pairTriggers, type TriggerPairs } from '../../engine/trigger-pairs.js';
import type { StoredUnit } from '../../registry/model.js';
import { formatProblem } from '../../unit/problems.js';
import type { DesiredState } from '../../unit/states.js';
import { parseUnit } from '../../unit/unit.js';

/** The first section of each type's test unit: the extra lines of a case go into it. */
const BODIES: Readonly<Record<string, string>> = {
  socket: '[Socket]\nListenStream=7000\n',
  timer: '[Timer]\nOnCalendar=hourly\n',
  path: '[Path]\nPathChanged=/var/tmp/watched\n',
  automount: '[Automount]\nTimeoutIdleSec=60\n',
  mount: '[Mount]\nWhat=tmpfs\nWhere=/srv/data\nType=tmpfs\n',
};

/** A stored unit from unit-file text; sockets listen on a port, timers elapse, services run a command. */
function stored(name: string, desiredState: DesiredState, lines: readonly string[] = []): StoredUnit {
  const body = BODIES[name.slice(name.lastIndexOf('.') + 1)] ?? '[Service]\nExecStart=/bin/cat\n';
  const extra = lines.filter((l) => !l.startsWith('X-Fleet:'));
  const fleet = lines.filter((l) => l.startsWith('X-Fleet:')).map((l) => l.slice('X-Fleet:'.length));
  const text = `${body}${extra.join('\n')}${extra.length > 0 ? '\n' : ''}${
    fleet.length > 0 ? `\n[X-Fleet]\n${fleet.join('\n')}\n` : ''
  }`;
  const r = parseUnit(name, text);
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('; '));
  const u = r.value;
  return {
    unit: {
      name: u.name,
      hash: u.hash,
      options: u.file.options.map((o) => ({ section: o.section, name: o.name, value: o.value })),
      fleet: u.fleet,
    },
    desiredState,
  };
}

const fleet = (...lines: string[]): string[] => lines.map((l) => `X-Fleet:${l}`);

/** What a case checks per unit: the desired state and MachineOf the scheduler sees, or absence. */
type Seen = `${DesiredState}${string}` | 'dropped';

function seen(pairs: TriggerPairs, names: readonly string[]): Record<string, Seen> {
  const byName = new Map(pairs.units.map((u) => [u.name, u]));
  const out: Record<string, Seen> = {};
  for (const n of names) {
    const u = byName.get(n);
    out[n] =
      u === undefined
        ? 'dropped'
        : (`${u.desiredState}${u.fleet.machineOf.length > 0 ? ` MachineOf ${u.fleet.machineOf.join(',')}` : ''}` as Seen);
  }
  return out;
}

interface Case {
  readonly title: string;
  readonly units: readonly StoredUnit[];
  readonly schedule?: Readonly<Record<string, string>>;
  readonly want: Readonly<Record<string, Seen>>;
  /** Unit -> reason of every contradicted unit. */
  readonly unplaceable?: Readonly<Record<string, string>>;
}

const cases: readonly Case[] = [
  {
    title: 'makes the service follow its socket and loads it with the socket',
    units: [stored('echo.socket', 'launched'), stored('echo.service', 'inactive')],
    want: { 'echo.socket': 'launched', 'echo.service': 'loaded MachineOf echo.socket' },
  },
  {
    title: 'pairs the socket with the service its Service= names',
    units: [
      stored('web.socket', 'launched', ['Service=app.service']),
      stored('app.service', 'inactive'),
      stored('web.service', 'launched'),
    ],
    want: {
      'web.socket': 'launched',
      'app.service': 'loaded MachineOf web.socket',
      'web.service': 'launched',
    },
  },
  {
    title: 'places the template of an Accept=yes socket with it, loaded',
    units: [stored('greet.socket', 'launched', ['Accept=yes']), stored('greet@.service', 'inactive')],
    want: { 'greet.socket': 'launched', 'greet@.service': 'loaded MachineOf greet.socket' },
  },
  {
    title: 'expands the specifiers of a paired template for its own name',
    units: [
      stored('greet.socket', 'launched', ['Accept=yes']),
      stored('greet@.service', 'inactive', fleet('MachineOf=%p.socket')),
    ],
    want: { 'greet.socket': 'launched', 'greet@.service': 'loaded MachineOf greet.socket' },
  },
  {
    title: 'makes the service follow a socket pinned by MachineID',
    units: [stored('echo.socket', 'launched', fleet('MachineID=m2')), stored('echo.service', 'inactive')],
    want: { 'echo.socket': 'launched', 'echo.service': 'loaded MachineOf echo.socket' },
  },
  {
    title: 'makes the socket follow a service pinned by MachineID',
    units: [stored('echo.socket', 'launched'), stored('echo.service', 'inactive', fleet('MachineID=m2'))],
    want: { 'echo.socket': 'launched MachineOf echo.service', 'echo.service': 'loaded' },
  },
  {
    title: 'makes the socket follow a service pinned by MachineOf another unit',
    units: [
      stored('db.service', 'launched'),
      stored('echo.socket', 'launched'),
      stored('echo.service', 'inactive', fleet('MachineOf=db.service')),
    ],
    want: {
      'db.service': 'launched',
      'echo.socket': 'launched MachineOf echo.service',
      'echo.service': 'loaded MachineOf db.service',
    },
  },
  {
    title: 'adds nothing when the service already follows its socket (MachineOf=%p.socket)',
    units: [
      stored('echo.socket', 'launched', fleet('MachineID=m1')),
      stored('echo.service', 'inactive', fleet('MachineOf=%p.socket')),
    ],
    want: { 'echo.socket': 'launched', 'echo.service': 'loaded MachineOf echo.socket' },
  },
  {
    title: 'adds nothing when the socket already follows its service',
    units: [
      stored('echo.socket', 'launched', fleet('MachineOf=echo.service')),
      stored('echo.service', 'inactive'),
    ],
    want: { 'echo.socket': 'launched MachineOf echo.service', 'echo.service': 'loaded' },
  },
  {
    title: 'accepts the same MachineID on both, also as full and short ID',
    units: [
      stored('a.socket', 'launched', fleet('MachineID=0123456789abcdef0123456789abcdef')),
      stored('a.service', 'inactive', fleet('MachineID=01234567')),
      stored('b.socket', 'launched', fleet('MachineID=m1')),
      stored('b.service', 'loaded', fleet('MachineID=m1')),
    ],
    want: { 'a.socket': 'launched', 'a.service': 'loaded', 'b.socket': 'launched', 'b.service': 'loaded' },
  },
  {
    title: 'accepts both following one peer',
    units: [
      stored('db.service', 'launched'),
      stored('echo.socket', 'launched', fleet('MachineOf=db.service')),
      stored('echo.service', 'inactive', fleet('MachineOf=db.service')),
    ],
    want: {
      'echo.socket': 'launched MachineOf db.service',
      'echo.service': 'loaded MachineOf db.service',
    },
  },
  {
    title: 'refuses a socket and service pinned apart, and leaves both out',
    units: [
      stored('db.service', 'launched'),
      stored('echo.socket', 'launched', fleet('MachineID=m1')),
      stored('echo.service', 'launched', fleet('MachineOf=db.service')),
    ],
    want: { 'db.service': 'launched', 'echo.socket': 'dropped', 'echo.service': 'dropped' },
    unplaceable: {
      'echo.socket':
        'socket echo.socket and its service echo.service are pinned apart: MachineID m1 vs MachineOf db.service',
      'echo.service':
        'socket echo.socket and its service echo.service are pinned apart: MachineID m1 vs MachineOf db.service',
    },
  },
  {
    title: 'refuses two different MachineIDs',
    units: [
      stored('echo.socket', 'launched', fleet('MachineID=m1')),
      stored('echo.service', 'inactive', fleet('MachineID=m2')),
    ],
    want: { 'echo.socket': 'dropped', 'echo.service': 'dropped' },
    unplaceable: {
      'echo.socket':
        'socket echo.socket and its service echo.service are pinned apart: MachineID m1 vs MachineID m2',
      'echo.service':
        'socket echo.socket and its service echo.service are pinned apart: MachineID m1 vs MachineID m2',
    },
  },
  {
    title: 'refuses a global socket whose service is not global, keeping the global one for the agents',
    units: [stored('echo.socket', 'launched', fleet('Global=true')), stored('echo.service', 'inactive')],
    want: { 'echo.socket': 'launched', 'echo.service': 'dropped' },
    unplaceable: {
      'echo.socket':
        'socket echo.socket is global but its service echo.service is not: make both global or neither',
      'echo.service':
        'socket echo.socket is global but its service echo.service is not: make both global or neither',
    },
  },
  {
    title: 'refuses a global service whose socket is not global',
    units: [stored('echo.socket', 'launched'), stored('echo.service', 'launched', fleet('Global=yes'))],
    want: { 'echo.socket': 'dropped', 'echo.service': 'launched' },
    unplaceable: {
      'echo.socket':
        'service echo.service is global but its socket echo.socket is not: make both global or neither',
      'echo.service':
        'service echo.service is global but its socket echo.socket is not: make both global or neither',
    },
  },
  {
    title: 'leaves a global pair to the agents, with the service loaded',
    units: [
      stored('echo.socket', 'launched', fleet('Global=true')),
      stored('echo.service', 'inactive', fleet('Global=true')),
    ],
    want: { 'echo.socket': 'launched', 'echo.service': 'loaded' },
  },
  {
    title: 'raises an inactive service to loaded for a loaded socket',
    units: [stored('echo.socket', 'loaded'), stored('echo.service', 'inactive')],
    want: { 'echo.socket': 'loaded', 'echo.service': 'loaded MachineOf echo.socket' },
  },
  {
    title: 'keeps a launched service launched and a loaded one loaded',
    units: [
      stored('a.socket', 'launched'),
      stored('a.service', 'launched'),
      stored('b.socket', 'launched'),
      stored('b.service', 'loaded'),
    ],
    want: {
      'a.socket': 'launched',
      'a.service': 'launched MachineOf a.socket',
      'b.socket': 'launched',
      'b.service': 'loaded MachineOf b.socket',
    },
  },
  {
    title: 'pairs nothing while the socket is inactive',
    units: [stored('echo.socket', 'inactive'), stored('echo.service', 'launched')],
    want: { 'echo.socket': 'inactive', 'echo.service': 'launched' },
  },
  {
    title: 'leaves a socket whose service is not submitted alone',
    units: [stored('echo.socket', 'launched'), stored('other.service', 'launched')],
    want: { 'echo.socket': 'launched', 'other.service': 'launched' },
  },
  {
    title: 'lets a socket started later join its service that already runs',
    units: [stored('echo.socket', 'launched'), stored('echo.service', 'launched')],
    schedule: { 'echo.service': 'm2' },
    want: { 'echo.socket': 'launched MachineOf echo.service', 'echo.service': 'launched' },
  },
  {
    title: 'keeps the service following when both are already scheduled',
    units: [stored('echo.socket', 'launched'), stored('echo.service', 'launched')],
    schedule: { 'echo.service': 'm2', 'echo.socket': 'm2' },
    want: { 'echo.socket': 'launched', 'echo.service': 'launched MachineOf echo.socket' },
  },
  {
    title: 'puts every socket of one service with the first socket',
    units: [
      stored('a.socket', 'launched', ['Service=app.service']),
      stored('b.socket', 'launched', ['Service=app.service']),
      stored('app.service', 'inactive'),
    ],
    want: {
      'a.socket': 'launched',
      'b.socket': 'launched MachineOf a.socket',
      'app.service': 'loaded MachineOf a.socket',
    },
  },
  {
    title: 'refuses two sockets of one service pinned apart',
    units: [
      stored('a.socket', 'launched', ['Service=app.service', ...fleet('MachineID=m1')]),
      stored('b.socket', 'launched', ['Service=app.service', ...fleet('MachineID=m2')]),
      stored('app.service', 'inactive'),
    ],
    want: { 'a.socket': 'dropped', 'b.socket': 'dropped', 'app.service': 'dropped' },
    unplaceable: {
      'a.socket':
        'sockets a.socket and b.socket of service app.service are pinned apart: MachineID m1 vs MachineID m2',
      'b.socket':
        'sockets a.socket and b.socket of service app.service are pinned apart: MachineID m1 vs MachineID m2',
      'app.service':
        'sockets a.socket and b.socket of service app.service are pinned apart: MachineID m1 vs MachineID m2',
    },
  },
  {
    title: 'makes the service follow its timer and loads it with the timer',
    units: [stored('tick.timer', 'launched'), stored('tick.service', 'inactive')],
    want: { 'tick.timer': 'launched', 'tick.service': 'loaded MachineOf tick.timer' },
  },
  {
    title: 'pairs a timer with the unit its first valid Unit= names, as systemd does',
    units: [
      stored('nightly.timer', 'launched', [
        'Unit=nightly.timer',
        'Unit=backup.service',
        'Unit=other.service',
      ]),
      stored('backup.service', 'inactive'),
      stored('other.service', 'inactive'),
      stored('nightly.service', 'inactive'),
    ],
    want: {
      'nightly.timer': 'launched',
      'backup.service': 'loaded MachineOf nightly.timer',
      'other.service': 'inactive',
      'nightly.service': 'inactive',
    },
  },
  {
    title: 'pairs an instance of a timer template with the instance of the same name',
    units: [
      stored('job@a.timer', 'launched'),
      stored('job@a.service', 'inactive'),
      stored('job@b.service', 'inactive'),
    ],
    want: {
      'job@a.timer': 'launched',
      'job@a.service': 'loaded MachineOf job@a.timer',
      'job@b.service': 'inactive',
    },
  },
  {
    title: 'pairs a path unit with its Unit=, specifiers expanded for the path unit',
    units: [
      stored('in@x.path', 'launched', ['Unit=handle@%i.service']),
      stored('handle@x.service', 'inactive'),
    ],
    want: { 'in@x.path': 'launched', 'handle@x.service': 'loaded MachineOf in@x.path' },
  },
  {
    title: 'pairs an automount with the mount of the same name',
    units: [stored('srv-data.automount', 'launched'), stored('srv-data.mount', 'inactive')],
    want: { 'srv-data.automount': 'launched', 'srv-data.mount': 'loaded MachineOf srv-data.automount' },
  },
  {
    title: 'makes a new timer join its service where the service already runs',
    units: [stored('tick.timer', 'launched'), stored('tick.service', 'launched')],
    schedule: { 'tick.service': 'm2' },
    want: { 'tick.timer': 'launched MachineOf tick.service', 'tick.service': 'launched' },
  },
  {
    title: 'leaves a stopped timer unpaired',
    units: [stored('tick.timer', 'inactive'), stored('tick.service', 'inactive')],
    want: { 'tick.timer': 'inactive', 'tick.service': 'inactive' },
  },
  {
    title: 'refuses a timer and its service pinned to different machines',
    units: [
      stored('tick.timer', 'launched', fleet('MachineID=m1')),
      stored('tick.service', 'inactive', fleet('MachineID=m2')),
    ],
    want: { 'tick.timer': 'dropped', 'tick.service': 'dropped' },
    unplaceable: {
      'tick.timer':
        'timer tick.timer and its service tick.service are pinned apart: MachineID m1 vs MachineID m2',
      'tick.service':
        'timer tick.timer and its service tick.service are pinned apart: MachineID m1 vs MachineID m2',
    },
  },
  {
    title: 'refuses a global path unit whose service is not global',
    units: [stored('watch.path', 'launched', fleet('Global=true')), stored('watch.service', 'inactive')],
    want: { 'watch.path': 'launched', 'watch.service': 'dropped' },
    unplaceable: {
      'watch.path':
        'path watch.path is global but its service watch.service is not: make both global or neither',
      'watch.service':
        'path watch.path is global but its service watch.service is not: make both global or neither',
    },
  },
  {
    title: 'groups a socket and a timer of one service, and names both when they are pinned apart',
    units: [
      stored('app.socket', 'launched', fleet('MachineID=m1')),
      stored('app.timer', 'launched', fleet('MachineID=m2')),
      stored('app.service', 'inactive'),
    ],
    want: { 'app.socket': 'dropped', 'app.timer': 'dropped', 'app.service': 'dropped' },
    unplaceable: {
      'app.socket':
        'socket app.socket and timer app.timer of service app.service are pinned apart: MachineID m1 vs MachineID m2',
      'app.timer':
        'socket app.socket and timer app.timer of service app.service are pinned apart: MachineID m1 vs MachineID m2',
      'app.service':
        'socket app.socket and timer app.timer of service app.service are pinned apart: MachineID m1 vs MachineID m2',
    },
  },
];

describe('engine/trigger-pairs: pairTriggers', () => {
  for (const c of cases) {
    it(c.title, () => {
      const pairs = pairTriggers(c.units, new Map(Object.entries(c.schedule ?? {})));
      expect(seen(pairs, Object.keys(c.want))).to.deep.equal(c.want);
      expect(Object.fromEntries(pairs.unplaceable.map((u) => [u.unit, u.reason]))).to.deep.equal(
        c.unplaceable ?? {},
      );
    });
  }

  it('passes units without triggers through unchanged, the same objects and order', () => {
    const units = [
      stored('b.service', 'launched', fleet('MachineOf=a.service')),
      stored('a.service', 'loaded', fleet('MachineMetadata=region=eu')),
      stored('g.service', 'inactive', fleet('Global=true')),
      stored('lonely.socket', 'launched'),
    ];
    const pairs = pairTriggers(units, new Map([['a.service', 'm1']]));
    expect(pairs.units).to.deep.equal(
      units.map((u): SchedulableUnit => ({
        name: u.unit.name,
        hash: u.unit.hash,
        desiredState: u.desiredState,
        fleet: u.unit.fleet,
      })),
    );
    pairs.units.forEach((u, i) => expect(u.fleet).to.equal(units[i]?.unit.fleet));
    expect(pairs.groups).to.deep.equal([]);
    expect(pairs.unplaceable).to.deep.equal([]);
  });

  it('tells the cause of a contradiction', () => {
    const pairs = pairTriggers(
      [stored('echo.socket', 'launched', fleet('Global=true')), stored('echo.service', 'inactive')],
      new Map(),
    );
    expect(pairs.unplaceable[0]?.cause).to.deep.equal({
      kind: 'trigger-pair',
      problem: 'global-mismatch',
      target: 'echo.service',
      triggers: ['echo.socket'],
    });
  });
});

describe('engine/trigger-pairs with the scheduler', () => {
  const machines = ['m1', 'm2', 'm3'].map((id) => ({ id, metadata: {} }));
  const place = (units: readonly StoredUnit[], schedule: Record<string, string> = {}, live = machines) => {
    const current = new Map(Object.entries(schedule));
    const pairs = pairTriggers(units, current);
    const plan = planCluster({ units: pairs.units, machines: live, schedule: current });
    const explained = explainPlan(plan, pairs);
    const next = new Map(current);
    for (const c of explained.changes) {
      if (c.kind === 'unschedule') next.delete(c.unit);
      else next.set(c.unit, c.machine);
    }
    return { pairs, plan, explained, schedule: Object.fromEntries([...next].sort()) };
  };

  it('places a socket and its service on one machine, not spread by load', () => {
    const r = place([
      stored('a.service', 'launched'),
      stored('echo.service', 'inactive'),
      stored('echo.socket', 'launched'),
    ]);
    expect(r.schedule).to.deep.equal({ 'a.service': 'm1', 'echo.service': 'm2', 'echo.socket': 'm2' });
    const echo = r.explained.changes.find((c) => c.unit === 'echo.service');
    expect(echo).to.deep.include({ kind: 'schedule', desiredState: 'loaded' });
  });

  it('places a timer and its service on one machine, and moves them together', () => {
    const units = [
      stored('a.service', 'launched'),
      stored('tick.service', 'inactive'),
      stored('tick.timer', 'launched'),
    ];
    const r = place(units);
    expect(r.schedule).to.deep.equal({ 'a.service': 'm1', 'tick.service': 'm2', 'tick.timer': 'm2' });
    const tick = r.explained.changes.find((c) => c.unit === 'tick.service');
    expect(tick).to.deep.include({ kind: 'schedule', desiredState: 'loaded' });
    const moved = place(
      units,
      r.schedule,
      machines.filter((m) => m.id !== 'm2'),
    );
    expect(moved.schedule['tick.timer']).to.be.oneOf(['m1', 'm3']);
    expect(moved.schedule['tick.service']).to.equal(moved.schedule['tick.timer']);
  });

  it('moves the pair together when its machine goes away', () => {
    const units = [stored('echo.service', 'inactive'), stored('echo.socket', 'launched')];
    const r = place(units, { 'echo.service': 'm1', 'echo.socket': 'm1' }, machines.slice(1));
    expect(r.schedule).to.deep.equal({ 'echo.service': 'm2', 'echo.socket': 'm2' });
  });

  it('puts the socket where the pinned service goes', () => {
    const r = place([
      stored('echo.service', 'launched', fleet('MachineID=m3')),
      stored('echo.socket', 'launched'),
    ]);
    expect(r.schedule).to.deep.equal({ 'echo.service': 'm3', 'echo.socket': 'm3' });
  });

  it('unschedules a pair that became contradictory, with the reason, and explains its followers', () => {
    const units = [
      stored('echo.socket', 'launched', fleet('MachineID=m1')),
      stored('echo.service', 'launched', fleet('MachineID=m2')),
      stored('side.service', 'launched', fleet('MachineOf=echo.socket')),
    ];
    const r = place(units, { 'echo.socket': 'm1' });
    expect(r.schedule).to.deep.equal({});
    const reason =
      'socket echo.socket and its service echo.service are pinned apart: MachineID m1 vs MachineID m2';
    expect(r.explained.changes).to.deep.equal([
      { kind: 'unschedule', unit: 'echo.socket', machine: 'm1', reason },
    ]);
    expect(r.explained.unplaceable.map((u) => [u.unit, u.reason])).to.deep.equal([
      ['echo.service', reason],
      ['echo.socket', reason],
      ['side.service', 'MachineOf peer echo.socket could not be placed'],
    ]);
  });

  it('is stable: planning the placed pair again changes nothing', () => {
    const units = [stored('echo.service', 'launched'), stored('echo.socket', 'launched')];
    const first = place(units);
    const again = place(units, first.schedule);
    expect(again.plan.changes).to.deep.equal([]);
  });
});

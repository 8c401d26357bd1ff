import { expect } from 'chai';
import { describe, it } from 'mocha';

import {
  desiredAgentUnits,
  planAgent,
  type AgentTask,
  type CandidateUnit,
  type DesiredAgentUnit,
  type ObservedAgentUnit,
} from '../../agent/plan.js';
import { NO_FLEET_OPTIONS, type FleetOptions } from '../../unit/fleet-options.js';

const want = (
  name: string,
  desiredState: 'loaded' | 'launched' = 'launched',
  hash = 'h1',
): DesiredAgentUnit => ({
  name,
  hash,
  desiredState,
});

const have = (
  name: string,
  activeState = 'active',
  fileHash: string | undefined = 'h1',
  loadState = 'loaded',
): ObservedAgentUnit => ({
  name,
  fileHash,
  loadState,
  activeState,
});

const kinds = (tasks: AgentTask[]): string[] =>
  tasks.map((t) => ('unit' in t ? `${t.kind} ${t.unit}` : t.kind));

describe('agent/plan: planAgent', () => {
  const cases: {
    title: string;
    desired: DesiredAgentUnit[];
    observed: ObservedAgentUnit[];
    launched?: string[];
    want: string[];
  }[] = [
    { title: 'does nothing when nothing is desired or present', desired: [], observed: [], want: [] },
    {
      title: 'loads and starts a newly scheduled launched unit',
      desired: [want('a.service')],
      observed: [],
      want: ['load a.service', 'reload', 'start a.service'],
    },
    {
      title: 'loads without starting a newly scheduled loaded unit',
      desired: [want('a.service', 'loaded')],
      observed: [],
      want: ['load a.service', 'reload'],
    },
    {
      title: 'unloads a file that is not scheduled here',
      desired: [],
      observed: [have('a.service')],
      want: ['unload a.service', 'reload'],
    },
    {
      title: 'unloads an unscheduled unit even when it is not running',
      desired: [],
      observed: [have('a.service', 'inactive')],
      want: ['unload a.service', 'reload'],
    },
    {
      title: 'adopts a running unit with a matching file without touching it',
      desired: [want('a.service')],
      observed: [have('a.service')],
      want: [],
    },
    {
      title: 'adopts an activating unit',
      desired: [want('a.service')],
      observed: [have('a.service', 'activating')],
      want: [],
    },
    {
      title: 'starts a loaded unit whose desired state became launched',
      desired: [want('a.service')],
      observed: [have('a.service', 'inactive')],
      want: ['start a.service'],
    },
    {
      title: 'stops a running unit whose desired state became loaded',
      desired: [want('a.service', 'loaded')],
      observed: [have('a.service')],
      want: ['stop a.service'],
    },
    {
      title: 'leaves a stopped unit that should be loaded alone',
      desired: [want('a.service', 'loaded')],
      observed: [have('a.service', 'inactive')],
      want: [],
    },
    {
      title: 'leaves a failed unit that should be loaded alone',
      desired: [want('a.service', 'loaded')],
      observed: [have('a.service', 'failed')],
      want: [],
    },
    {
      title: 'does not restart a unit this agent already started that then failed',
      desired: [want('a.service')],
      observed: [have('a.service', 'failed')],
      launched: ['a.service'],
      want: [],
    },
    {
      title: 'does not rerun a oneshot that this agent started and that exited',
      desired: [want('a.service')],
      observed: [have('a.service', 'inactive')],
      launched: ['a.service'],
      want: [],
    },
    {
      title: 'starts a failed unit it finds after a restart (empty memory), as fleet did',
      desired: [want('a.service')],
      observed: [have('a.service', 'failed')],
      want: ['start a.service'],
    },
    {
      title: 'replaces a unit whose hash changed: unload, load, reload, start',
      desired: [want('a.service', 'launched', 'h2')],
      observed: [have('a.service')],
      launched: ['a.service'],
      want: ['unload a.service', 'load a.service', 'reload', 'start a.service'],
    },
    {
      title: 'replaces a loaded unit without starting it',
      desired: [want('a.service', 'loaded', 'h2')],
      observed: [have('a.service', 'inactive')],
      want: ['unload a.service', 'load a.service', 'reload'],
    },
    {
      title: 're-links a file that systemd does not know',
      desired: [want('a.service', 'loaded')],
      observed: [have('a.service', 'inactive', 'h1', 'not-found')],
      want: ['load a.service', 'reload'],
    },
    {
      title: 'orders unload, load, reload, stop, start across units, by name within a kind',
      desired: [want('b.service'), want('c.service', 'loaded'), want('d.service'), want('e.service')],
      observed: [have('a.service'), have('c.service'), have('d.service', 'inactive'), have('z.service')],
      want: [
        'unload a.service',
        'unload z.service',
        'load b.service',
        'load e.service',
        'reload',
        'stop c.service',
        'start b.service',
        'start d.service',
        'start e.service',
      ],
    },
    {
      title: 'adds no reload when only starts and stops are needed',
      desired: [want('a.service'), want('b.service', 'loaded')],
      observed: [have('a.service', 'inactive'), have('b.service')],
      want: ['stop b.service', 'start a.service'],
    },
  ];
  for (const c of cases) {
    it(c.title, () => {
      expect(kinds(planAgent(c.desired, c.observed, new Set(c.launched ?? [])))).to.deep.equal(c.want);
    });
  }

  it('gives every task a reason', () => {
    const tasks = planAgent(
      [want('a.service'), want('c.service', 'loaded')],
      [have('b.service'), have('c.service')],
      new Set(),
    );
    for (const t of tasks) expect(t.reason).to.be.a('string').and.not.equal('');
  });

  it('carries the scheduled hash on load tasks', () => {
    const tasks = planAgent([want('a.service', 'launched', 'abc')], [], new Set());
    expect(tasks[0]).to.deep.include({ kind: 'load', hash: 'abc' });
  });

  it('is idempotent: the state after the plan needs no tasks', () => {
    const desired = [want('a.service'), want('b.service', 'loaded'), want('c.service', 'launched', 'h2')];
    const observed = [have('c.service'), have('d.service')];
    expect(planAgent(desired, observed, new Set())).to.not.deep.equal([]);
    const after: ObservedAgentUnit[] = [
      have('a.service', 'active', 'h1'),
      have('b.service', 'inactive', 'h1'),
      have('c.service', 'active', 'h2'),
    ];
    expect(planAgent(desired, after, new Set(['a.service', 'c.service']))).to.deep.equal([]);
  });
});

describe('agent/plan: planAgent with triggers (sockets, timers, paths)', () => {
  const socket = (
    name: string,
    activates: string,
    desiredState: 'loaded' | 'launched' = 'launched',
  ): DesiredAgentUnit => ({ name, hash: 'h1', desiredState, activates });
  const cases: {
    title: string;
    desired: DesiredAgentUnit[];
    observed: ObservedAgentUnit[];
    launched?: string[];
    want: string[];
  }[] = [
    {
      title: 'loads the service with its socket and starts only the socket',
      desired: [socket('echo.socket', 'echo.service'), want('echo.service', 'loaded')],
      observed: [],
      want: ['load echo.service', 'load echo.socket', 'reload', 'start echo.socket'],
    },
    {
      title: 'leaves a service that its launched socket activated running',
      desired: [socket('echo.socket', 'echo.service'), want('echo.service', 'loaded')],
      observed: [have('echo.socket', 'active'), have('echo.service', 'active')],
      launched: ['echo.socket'],
      want: [],
    },
    {
      title: 'stops a running service whose socket is only loaded',
      desired: [socket('echo.socket', 'echo.service', 'loaded'), want('echo.service', 'loaded')],
      observed: [have('echo.socket', 'inactive'), have('echo.service', 'active')],
      want: ['stop echo.service'],
    },
    {
      title: 'still stops a running service that no socket here activates',
      desired: [socket('echo.socket', 'other.service'), want('echo.service', 'loaded')],
      observed: [have('echo.socket', 'active'), have('echo.service', 'active')],
      launched: ['echo.socket'],
      want: ['stop echo.service'],
    },
    {
      title: 'starts a socket again that failed to listen once its service is loaded',
      desired: [socket('echo.socket', 'echo.service'), want('echo.service', 'loaded')],
      observed: [have('echo.socket', 'inactive')],
      launched: ['echo.socket'],
      want: ['load echo.service', 'reload', 'start echo.socket'],
    },
    {
      title: 'does not start a socket again that stopped while its service stays loaded',
      desired: [socket('echo.socket', 'echo.service'), want('echo.service', 'loaded')],
      observed: [have('echo.socket', 'failed'), have('echo.service', 'inactive')],
      launched: ['echo.socket'],
      want: [],
    },
    {
      title: 'loads the service with its timer and starts only the timer',
      desired: [socket('tick.timer', 'tick.service'), want('tick.service', 'loaded')],
      observed: [],
      want: ['load tick.service', 'load tick.timer', 'reload', 'start tick.timer'],
    },
    {
      title: 'leaves a oneshot that its launched timer started running',
      desired: [socket('tick.timer', 'tick.service'), want('tick.service', 'loaded')],
      observed: [have('tick.timer', 'active'), have('tick.service', 'activating')],
      launched: ['tick.timer'],
      want: [],
    },
    {
      title: 'starts a timer again that systemd refused while its service was not loaded',
      desired: [socket('tick.timer', 'tick.service'), want('tick.service', 'loaded')],
      observed: [have('tick.timer', 'inactive')],
      launched: ['tick.timer'],
      want: ['load tick.service', 'reload', 'start tick.timer'],
    },
    {
      title: 'leaves a service that its launched path unit started running',
      desired: [socket('watch.path', 'watch.service'), want('watch.service', 'loaded')],
      observed: [have('watch.path', 'active'), have('watch.service', 'active')],
      launched: ['watch.path'],
      want: [],
    },
    {
      title: 'installs a template without starting it',
      desired: [socket('greet.socket', 'greet@.service'), want('greet@.service', 'loaded')],
      observed: [],
      want: ['load greet.socket', 'load greet@.service', 'reload', 'start greet.socket'],
    },
    {
      title: 'does not load a template again although systemd does not list it',
      desired: [socket('greet.socket', 'greet@.service'), want('greet@.service', 'loaded')],
      observed: [have('greet.socket', 'active'), have('greet@.service', 'inactive', 'h1', 'not-found')],
      launched: ['greet.socket'],
      want: [],
    },
    {
      title: 'never starts or stops a template',
      desired: [want('greet@.service', 'launched'), want('web@.service', 'loaded')],
      observed: [have('greet@.service', 'inactive', 'h1', 'not-found'), have('web@.service', 'active')],
      want: [],
    },
    {
      title: 'replaces a template whose hash changed',
      desired: [want('greet@.service', 'loaded', 'h2')],
      observed: [have('greet@.service', 'inactive', 'h1', 'not-found')],
      want: ['unload greet@.service', 'load greet@.service', 'reload'],
    },
    {
      title: 'unloads a template that is no longer scheduled here',
      desired: [],
      observed: [have('greet@.service', 'inactive', 'h1', 'not-found')],
      want: ['unload greet@.service', 'reload'],
    },
  ];
  for (const c of cases) {
    it(c.title, () => {
      expect(kinds(planAgent(c.desired, c.observed, new Set(c.launched ?? [])))).to.deep.equal(c.want);
    });
  }

  it('is idempotent for a socket pair with a template', () => {
    const desired = [socket('greet.socket', 'greet@.service'), want('greet@.service', 'loaded')];
    expect(planAgent(desired, [], new Set())).to.not.deep.equal([]);
    const after = [have('greet.socket', 'active'), have('greet@.service', 'inactive', 'h1', 'not-found')];
    expect(planAgent(desired, after, new Set(['greet.socket']))).to.deep.equal([]);
  });
});

describe('agent/plan: desiredAgentUnits', () => {
  const unit = (
    name: string,
    fleet: Partial<FleetOptions> = {},
    desiredState: CandidateUnit['desiredState'] = 'launched',
  ): CandidateUnit => ({
    name,
    hash: `h-${name}`,
    desiredState,
    fleet: { ...NO_FLEET_OPTIONS, ...fleet },
  });
  const names = (units: DesiredAgentUnit[]): string[] => units.map((u) => u.name);

  it('takes every scheduled unit with its desired state', () => {
    expect(desiredAgentUnits([unit('a.service'), unit('b.service', {}, 'loaded')], [], {})).to.deep.equal([
      { name: 'a.service', hash: 'h-a.service', desiredState: 'launched' },
      { name: 'b.service', hash: 'h-b.service', desiredState: 'loaded' },
    ]);
  });

  it('leaves out inactive scheduled and global units', () => {
    expect(
      names(
        desiredAgentUnits(
          [unit('a.service', {}, 'inactive')],
          [unit('g.service', { global: true }, 'inactive')],
          {},
        ),
      ),
    ).to.deep.equal([]);
  });

  it('takes a global unit without metadata requirements', () => {
    expect(names(desiredAgentUnits([], [unit('g.service', { global: true })], {}))).to.deep.equal([
      'g.service',
    ]);
  });

  it('takes a global unit only where its metadata matches (AND across keys, OR within one)', () => {
    const g = unit('g.service', {
      global: true,
      machineMetadata: [
        { key: 'region', values: ['eu', 'us'] },
        { key: 'disk', values: ['ssd'] },
      ],
    });
    expect(names(desiredAgentUnits([], [g], { region: 'us', disk: 'ssd' }))).to.deep.equal(['g.service']);
    expect(names(desiredAgentUnits([], [g], { region: 'us', disk: 'hdd' }))).to.deep.equal([]);
    expect(names(desiredAgentUnits([], [g], { region: 'us' }))).to.deep.equal([]);
  });

  it('skips a global unit that conflicts with a scheduled unit, in either direction', () => {
    const scheduled = [unit('db.service', { conflicts: ['g1.service'] })];
    const globals = [
      unit('g1.service', { global: true }),
      unit('g2.service', { global: true, conflicts: ['db.*'] }),
    ];
    expect(names(desiredAgentUnits(scheduled, globals, {}))).to.deep.equal(['db.service']);
  });

  it('lets the first global unit by name win a conflict between globals', () => {
    const globals = [
      unit('b.service', { global: true, conflicts: ['a.service'] }),
      unit('a.service', { global: true }),
    ];
    expect(names(desiredAgentUnits([], globals, {}))).to.deep.equal(['a.service']);
  });

  it('raises the global service of a global socket to loaded, and carries what the socket activates', () => {
    const globals = [
      { ...unit('echo.socket', { global: true }), activates: 'echo.service' },
      unit('echo.service', { global: true }, 'inactive'),
    ];
    expect(desiredAgentUnits([], globals, {})).to.deep.equal([
      { name: 'echo.service', hash: 'h-echo.service', desiredState: 'loaded' },
      { name: 'echo.socket', hash: 'h-echo.socket', desiredState: 'launched', activates: 'echo.service' },
    ]);
  });

  it('keeps a global service the user launched launched', () => {
    const globals = [
      { ...unit('echo.socket', { global: true }), activates: 'echo.service' },
      unit('echo.service', { global: true }, 'launched'),
    ];
    expect(desiredAgentUnits([], globals, {}).map((u) => u.desiredState)).to.deep.equal([
      'launched',
      'launched',
    ]);
  });

  it('raises nothing where the global socket does not run or is inactive', () => {
    const eu = [{ key: 'region', values: ['eu'] }];
    const service = unit('echo.service', { global: true }, 'inactive');
    const socket = {
      ...unit('echo.socket', { global: true, machineMetadata: eu }),
      activates: 'echo.service',
    };
    expect(names(desiredAgentUnits([], [socket, service], { region: 'us' }))).to.deep.equal([]);
    const idle = { ...unit('echo.socket', { global: true }, 'inactive'), activates: 'echo.service' };
    expect(names(desiredAgentUnits([], [idle, service], {}))).to.deep.equal([]);
  });
});

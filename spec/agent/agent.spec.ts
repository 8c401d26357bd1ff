import { expect } from 'chai';
import { describe, it, beforeEach, afterEach } from 'mocha';

import { Agent, type AgentConfig } from '../../agent/agent.js';
import { InMemorySystemdManager } from '../../agent/in-memory-systemd-manager.js';
import type { JobResult, UnitStatus } from '../../agent/systemd-manager.js';
import { systemClock } from '../../lib/clock.js';
import { FleetError, isFleetError } from '../../lib/errors.js';
import { MemoryLogger } from '../../lib/logger.js';
import { InMemoryRegistry } from '../../registry/in-memory-registry.js';
import type { Leadership, MachinePresence } from '../../registry/registry.js';
import type { MachineRecord, UnitRecord } from '../../registry/model.js';
import { formatProblem } from '../../unit/problems.js';
import { isTemplate } from '../../unit/unit-name.js';
import { parseUnit } from '../../unit/unit.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { unitRecord } from '../helpers/registry-builders.js';
import type { ClusterEventInput } from '../../unit/cluster-events.js';

/** A unit record from unit-file text. */
function recordOf(name: string, text: string): UnitRecord {
  const r = parseUnit(name, text);
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('; '));
  const u = r.value;
  return {
    name: u.name,
    hash: u.hash,
    options: u.file.options.map((o) => ({ section: o.section, name: o.name, value: o.value })),
    fleet: u.fleet,
  };
}

/**
 * The fake systemd with real systemd's answer to a template name in ListUnitsByNames, StartUnit
 * and StopUnit (checked on systemd 252): the whole call fails.
 */
class TemplateRefusingSystemd extends InMemorySystemdManager {
  private refuse(names: readonly string[]): void {
    const t = names.find(isTemplate);
    if (t !== undefined) {
      throw new FleetError('SYSTEMD_FAILED', `Unit name ${t} is missing the instance name.`);
    }
  }

  override async unitStatus(names: readonly string[]): Promise<UnitStatus[]> {
    this.refuse(names);
    return super.unitStatus(names);
  }

  override async startUnit(name: string): Promise<JobResult> {
    this.refuse([name]);
    return super.startUnit(name);
  }

  override async stopUnit(name: string): Promise<JobResult> {
    this.refuse([name]);
    return super.stopUnit(name);
  }
}

/** The fake systemd whose stop of one unit hangs until released (a slow ExecStop). */
class HangingStopSystemd extends InMemorySystemdManager {
  stopping = false;
  private releaseStop: (() => void) | undefined;
  constructor(private readonly slow: string) {
    super();
  }

  override async stopUnit(name: string): Promise<JobResult> {
    if (name === this.slow) {
      this.stopping = true;
      await new Promise<void>((resolve) => (this.releaseStop = resolve));
    }
    return super.stopUnit(name);
  }

  release(): void {
    this.releaseStop?.();
  }
}

/** The fake systemd that refuses the first `times` installs of one unit. */
class FailingInstallSystemd extends InMemorySystemdManager {
  installFailures = 0;
  constructor(
    private readonly bad: string,
    private readonly times: number,
  ) {
    super();
  }

  override async installUnit(name: string, contents: string, options?: { readonly enable?: boolean }) {
    if (name === this.bad && this.installFailures < this.times) {
      this.installFailures++;
      throw new FleetError('SYSTEMD_FAILED', `injected install failure of ${name}`);
    }
    return super.installUnit(name, contents, options);
  }
}

const config = (overrides: Partial<AgentConfig> = {}): AgentConfig => ({
  ttlSeconds: 10,
  reconcileIntervalMs: 60_000,
  publicIp: '10.250.0.11',
  metadata: {},
  version: '0.1.0',
  ...overrides,
});

describe('agent/agent over the in-memory registry and systemd', () => {
  let registry: InMemoryRegistry;
  let leadership: Leadership;
  let agents: Agent[];

  beforeEach(async () => {
    registry = new InMemoryRegistry();
    leadership = await registry.campaign('engine', 10, new AbortController().signal);
    agents = [];
  });

  afterEach(async () => {
    for (const a of agents) await a.close();
  });

  async function startAgent(
    machineId: string,
    systemd: InMemorySystemdManager,
    cfg: Partial<AgentConfig> = {},
  ) {
    const agent = new Agent({
      machineId,
      registry,
      systemd,
      clock: systemClock,
      logger: new MemoryLogger(),
      config: config(cfg),
    });
    await agent.start();
    agents.push(agent);
    return agent;
  }

  async function schedule(
    unit: UnitRecord,
    machine: string,
    desiredState: 'loaded' | 'launched' = 'launched',
  ) {
    await registry.submitUnit(unit, desiredState, { replace: true });
    await registry.applySchedule(
      [{ kind: 'put', placement: { unit: unit.name, machine, hash: unit.hash, desiredState } }],
      leadership,
    );
  }

  async function stateOf(unit: string, machine = 'm1') {
    return (await registry.listUnitStates({ unit, machine }))[0];
  }

  it('announces its machine', async () => {
    await startAgent('m1', new InMemorySystemdManager());
    expect((await registry.listMachines()).map((m) => [m.id, m.publicIp])).to.deep.equal([
      ['m1', '10.250.0.11'],
    ]);
  });

  it('records the units it starts and stops, and adopts running ones after a restart (cluster events)', async () => {
    const systemd = new InMemorySystemdManager();
    const seen: ClusterEventInput[] = [];
    const make = () =>
      new Agent({
        machineId: 'm1',
        registry,
        systemd,
        clock: systemClock,
        logger: new MemoryLogger(),
        config: config({ bootId: 'boot-1' }),
        events: { record: (e) => seen.push(e) },
      });
    const first = make();
    await first.start();
    await schedule(recordOf('web.service', '[Service]\nExecStart=/bin/true\n'), 'm1');
    await eventually(() => {
      expect(seen.map((e) => `${e.kind} ${e.unit ?? ''} ${e.machine ?? ''}`)).to.deep.equal([
        'started web.service m1',
      ]);
    });
    expect(seen[0]?.message).to.match(/^started: unit newly loaded and desired state is launched/);
    await first.close();
    seen.length = 0;
    const second = make();
    agents.push(second);
    await second.start();
    await eventually(() => {
      expect(seen.map((e) => `${e.kind} ${e.unit ?? ''}`)).to.deep.equal(['adopted web.service']);
    });
    await schedule(recordOf('web.service', '[Service]\nExecStart=/bin/true\n'), 'm1', 'loaded');
    await eventually(() => {
      expect(seen.map((e) => e.kind)).to.deep.equal(['adopted', 'stopped']);
    });
  });

  it('loads and starts a unit scheduled here and reports it active/running', async () => {
    const systemd = new InMemorySystemdManager();
    await startAgent('m1', systemd);
    const u = unitRecord('web.service');
    await schedule(u, 'm1');
    await eventually(async () =>
      expect(await stateOf('web.service')).to.include({
        activeState: 'active',
        subState: 'running',
        hash: u.hash,
        launched: true,
      }),
    );
    expect(systemd.isLinked('web.service')).to.equal(true);
    expect(await systemd.readUnitFile('web.service')).to.equal('[Service]\nExecStart=/bin/sleep infinity\n');
  });

  it('ignores units scheduled on other machines', async () => {
    const systemd = new InMemorySystemdManager();
    const agent = await startAgent('m1', systemd);
    await schedule(unitRecord('other.service'), 'm2');
    await agent.idle();
    expect(await systemd.listUnitFiles()).to.deep.equal([]);
  });

  it('loads without starting a unit whose desired state is loaded', async () => {
    const systemd = new InMemorySystemdManager();
    await startAgent('m1', systemd);
    await schedule(unitRecord('web.service'), 'm1', 'loaded');
    await eventually(async () =>
      expect(await stateOf('web.service')).to.include({
        loadState: 'loaded',
        activeState: 'inactive',
        subState: 'dead',
      }),
    );
  });

  it('stops a unit whose desired state becomes loaded, keeping its file', async () => {
    const systemd = new InMemorySystemdManager();
    await startAgent('m1', systemd);
    const u = unitRecord('web.service');
    await schedule(u, 'm1');
    await eventually(async () => expect((await stateOf('web.service'))?.activeState).to.equal('active'));
    await schedule(u, 'm1', 'loaded');
    await eventually(async () =>
      expect(await stateOf('web.service')).to.include({ activeState: 'inactive', launched: false }),
    );
    expect(await systemd.listUnitFiles()).to.deep.equal(['web.service']);
  });

  it('unloads a unit unscheduled from here: file, link and state removed', async () => {
    const systemd = new InMemorySystemdManager();
    await startAgent('m1', systemd);
    await schedule(unitRecord('web.service'), 'm1');
    await eventually(async () => expect(await stateOf('web.service')).to.not.equal(undefined));
    await registry.applySchedule([{ kind: 'delete', unit: 'web.service', machine: 'm1' }], leadership);
    await eventually(async () => expect(await stateOf('web.service')).to.equal(undefined));
    expect(await systemd.listUnitFiles()).to.deep.equal([]);
    expect(systemd.isLinked('web.service')).to.equal(false);
    expect((await systemd.unitStatus(['web.service']))[0]?.loadState).to.equal('not-found');
  });

  it('reports a unit that fails as failed', async () => {
    const systemd = new InMemorySystemdManager();
    await startAgent('m1', systemd);
    systemd.failNextStart('bad.service');
    await schedule(unitRecord('bad.service'), 'm1');
    await eventually(async () =>
      expect(await stateOf('bad.service')).to.include({ activeState: 'failed', subState: 'failed' }),
    );
  });

  it('starts a unit while the stop job of another unit hangs, and reconciles meanwhile', async () => {
    const systemd = new HangingStopSystemd('slow.service');
    const agent = await startAgent('m1', systemd);
    await schedule(unitRecord('slow.service'), 'm1');
    await eventually(async () => expect((await stateOf('slow.service'))?.activeState).to.equal('active'));
    await schedule(unitRecord('slow.service'), 'm1', 'loaded');
    await eventually(() => expect(systemd.stopping).to.equal(true));
    const rounds = agent.rounds;
    await schedule(unitRecord('quick.service'), 'm1');
    await eventually(async () => expect((await stateOf('quick.service'))?.activeState).to.equal('active'), {
      timeoutMs: 2000,
    });
    expect(agent.rounds, 'reconciles ran while the stop hung').to.be.greaterThan(rounds);
    systemd.release();
    await eventually(async () => expect((await stateOf('slow.service'))?.activeState).to.equal('inactive'));
  });

  it('keeps managing every other unit while one unit fails to install, and retries it', async () => {
    const systemd = new FailingInstallSystemd('bad.service', 2);
    await startAgent('m1', systemd);
    await schedule(unitRecord('bad.service'), 'm1');
    await schedule(unitRecord('good.service'), 'm1');
    await eventually(async () => expect((await stateOf('good.service'))?.activeState).to.equal('active'));
    expect(systemd.installFailures).to.be.greaterThan(0);
    // Retried on its own backoff (1 s, then 2 s) until the install works.
    await eventually(async () => expect((await stateOf('bad.service'))?.activeState).to.equal('active'), {
      timeoutMs: 8000,
    });
    expect(systemd.installFailures).to.equal(2);
  });

  it('reports a crash signalled by systemd without a reconcile', async () => {
    const systemd = new InMemorySystemdManager();
    const agent = await startAgent('m1', systemd);
    await schedule(unitRecord('web.service'), 'm1');
    await eventually(async () => expect((await stateOf('web.service'))?.activeState).to.equal('active'));
    const rounds = agent.rounds;
    systemd.crashUnit('web.service');
    await eventually(async () => expect((await stateOf('web.service'))?.activeState).to.equal('failed'));
    expect(agent.rounds).to.equal(rounds);
  });

  it('does not restart a healthy unit when the agent restarts', async () => {
    const systemd = new InMemorySystemdManager();
    const first = await startAgent('m1', systemd);
    await schedule(unitRecord('web.service'), 'm1');
    await eventually(async () => expect((await stateOf('web.service'))?.activeState).to.equal('active'));
    const pid = systemd.mainPid('web.service');
    await first.close({ release: true });
    const second = await startAgent('m1', systemd);
    await second.idle();
    await eventually(async () => expect((await stateOf('web.service'))?.activeState).to.equal('active'));
    expect(systemd.mainPid('web.service')).to.equal(pid);
    expect(systemd.callCount('startUnit')).to.equal(1);
  });

  it('reloads a replaced unit with its new contents', async () => {
    const systemd = new InMemorySystemdManager();
    await startAgent('m1', systemd);
    await schedule(unitRecord('web.service'), 'm1');
    await eventually(async () => expect((await stateOf('web.service'))?.activeState).to.equal('active'));
    const next = unitRecord('web.service', [], '/bin/sleep 1000');
    await schedule(next, 'm1');
    await eventually(async () =>
      expect(await stateOf('web.service')).to.include({ hash: next.hash, activeState: 'active' }),
    );
    expect(await systemd.readUnitFile('web.service')).to.equal('[Service]\nExecStart=/bin/sleep 1000\n');
  });

  it('keeps units running while the registry is unreachable, and catches up after', async () => {
    const systemd = new InMemorySystemdManager();
    const agent = await startAgent('m1', systemd);
    await schedule(unitRecord('web.service'), 'm1');
    await eventually(async () => expect((await stateOf('web.service'))?.activeState).to.equal('active'));
    const pid = systemd.mainPid('web.service');
    registry.partition();
    agent.trigger();
    await agent.idle();
    expect(systemd.mainPid('web.service')).to.equal(pid);
    expect(systemd.callCount('stopUnit')).to.equal(0);
    registry.heal();
    await schedule(unitRecord('two.service'), 'm1');
    await eventually(async () => expect((await stateOf('two.service'))?.activeState).to.equal('active'));
    expect(systemd.mainPid('web.service')).to.equal(pid);
  });

  it('publishes a state again when its publish ended after the machine was announced again', async () => {
    // A publish that completes after the presence was lost and renewed wrote its key under the
    // old lease, which took the key with it: the state must not count as published.
    let hold: Promise<void> | undefined;
    let release: () => void = () => undefined;
    class SlowPublishRegistry extends InMemoryRegistry {
      override async announceMachine(record: MachineRecord, ttlSeconds: number): Promise<MachinePresence> {
        const presence = await super.announceMachine(record, ttlSeconds);
        const publish = presence.publishUnitState.bind(presence);
        presence.publishUnitState = async (state) => {
          await publish(state);
          if (hold !== undefined && state.activeState === 'active') await hold;
        };
        return presence;
      }
    }
    registry = new SlowPublishRegistry();
    leadership = await registry.campaign('engine', 10, new AbortController().signal);
    const systemd = new InMemorySystemdManager();
    await startAgent('m1', systemd);
    hold = new Promise<void>((resolve) => (release = resolve));
    await schedule(unitRecord('web.service'), 'm1');
    await eventually(async () => expect((await stateOf('web.service'))?.activeState).to.equal('active'));
    // The publish of 'active' is written but not finished: the lease runs out, the agent
    // announces again, and only then does the publish return.
    registry.expireMachine('m1');
    expect(await stateOf('web.service')).to.equal(undefined);
    await eventually(async () => expect((await registry.listMachines()).map((m) => m.id)).to.include('m1'));
    hold = undefined;
    release();
    await eventually(async () => expect((await stateOf('web.service'))?.activeState).to.equal('active'));
  });

  it('runs a global unit only where its metadata matches', async () => {
    const east = new InMemorySystemdManager();
    const west = new InMemorySystemdManager();
    await startAgent('m1', east, { metadata: { region: 'east' } });
    await startAgent('m2', west, { metadata: { region: 'west' } });
    await registry.submitUnit(
      unitRecord('g.service', ['Global=true', 'MachineMetadata=region=east']),
      'launched',
    );
    await eventually(async () => expect((await stateOf('g.service', 'm1'))?.activeState).to.equal('active'));
    expect(await west.listUnitFiles()).to.deep.equal([]);
  });

  it('stops and unloads a global unit when it is destroyed', async () => {
    const systemd = new InMemorySystemdManager();
    await startAgent('m1', systemd);
    await registry.submitUnit(unitRecord('g.service', ['Global=true']), 'launched');
    await eventually(async () => expect((await stateOf('g.service'))?.activeState).to.equal('active'));
    await registry.destroyUnit('g.service');
    await eventually(async () => expect(await systemd.listUnitFiles()).to.deep.equal([]));
  });

  it('refuses to start when another live fleetd holds the machine ID', async () => {
    await startAgent('m1', new InMemorySystemdManager());
    const clash = new Agent({
      machineId: 'm1',
      registry,
      systemd: new InMemorySystemdManager(),
      clock: systemClock,
      logger: new MemoryLogger(),
      config: config({ publicIp: '10.250.0.99' }),
    });
    const err: unknown = await clash.start().catch((e: unknown) => e);
    expect(isFleetError(err, 'MACHINE_ID_IN_USE')).to.equal(true);
  });

  it('removes the machine at once when closed with release', async () => {
    const agent = await startAgent('m1', new InMemorySystemdManager());
    await agent.close({ release: true });
    expect(await registry.listMachines()).to.deep.equal([]);
  });

  describe('socket activation', () => {
    const echoSocket = recordOf('echo.socket', '[Socket]\nListenStream=7001\n');
    const greetSocket = recordOf('greet.socket', '[Socket]\nListenStream=7002\nAccept=yes\n');
    const greetTemplate = recordOf(
      'greet@.service',
      '[Service]\nExecStart=/bin/echo hello\nStandardOutput=socket\n',
    );

    it('leaves a service that systemd activated for its socket running', async () => {
      const systemd = new InMemorySystemdManager();
      const agent = await startAgent('m1', systemd);
      await schedule(unitRecord('echo.service'), 'm1', 'loaded');
      await schedule(echoSocket, 'm1');
      await eventually(async () =>
        expect(await stateOf('echo.socket')).to.include({ activeState: 'active', subState: 'listening' }),
      );
      expect(await stateOf('echo.service')).to.include({ activeState: 'inactive', subState: 'dead' });
      // A connection: systemd starts the service itself.
      await systemd.startUnit('echo.service');
      await eventually(async () =>
        expect(await stateOf('echo.service')).to.include({
          activeState: 'active',
          subState: 'running',
          launched: false,
        }),
      );
      agent.trigger();
      await agent.idle();
      expect((await systemd.unitStatus(['echo.service']))[0]?.activeState).to.equal('active');
      expect(systemd.callCount('stopUnit')).to.equal(0);
    });

    it('installs and links a template without starting it, asking systemd nothing about it', async () => {
      const systemd = new TemplateRefusingSystemd();
      const agent = await startAgent('m1', systemd);
      await schedule(greetTemplate, 'm1', 'loaded');
      await schedule(greetSocket, 'm1');
      await eventually(async () => expect((await stateOf('greet.socket'))?.activeState).to.equal('active'));
      expect(systemd.isLinked('greet@.service')).to.equal(true);
      expect(await systemd.readUnitFile('greet@.service')).to.equal(
        '[Service]\nExecStart=/bin/echo hello\nStandardOutput=socket\n',
      );
      expect(await stateOf('greet@.service')).to.equal(undefined);
      // No reload loop: more reconciles load nothing again.
      const installs = systemd.callCount('installUnit');
      const reloads = systemd.callCount('reload');
      for (let i = 0; i < 3; i++) {
        agent.trigger();
        await agent.idle();
      }
      expect(systemd.callCount('installUnit')).to.equal(installs);
      expect(systemd.callCount('reload')).to.equal(reloads);
    });

    it('unloads a template that is unscheduled from here without stopping it', async () => {
      const systemd = new TemplateRefusingSystemd();
      await startAgent('m1', systemd);
      await schedule(greetTemplate, 'm1', 'loaded');
      await eventually(async () => expect(await systemd.listUnitFiles()).to.deep.equal(['greet@.service']));
      await registry.applySchedule([{ kind: 'delete', unit: 'greet@.service', machine: 'm1' }], leadership);
      await eventually(async () => expect(await systemd.listUnitFiles()).to.deep.equal([]));
      expect(systemd.isLinked('greet@.service')).to.equal(false);
    });

    it('loads a global service with its global socket, and starts only the socket', async () => {
      const systemd = new InMemorySystemdManager();
      await startAgent('m1', systemd);
      await registry.submitUnit(unitRecord('echo.service', ['Global=true']), 'inactive');
      await registry.submitUnit(
        recordOf('echo.socket', '[Socket]\nListenStream=7001\n\n[X-Fleet]\nGlobal=true\n'),
        'launched',
      );
      await eventually(async () =>
        expect(await stateOf('echo.socket')).to.include({ activeState: 'active', subState: 'listening' }),
      );
      await eventually(async () =>
        expect(await stateOf('echo.service')).to.include({ loadState: 'loaded', activeState: 'inactive' }),
      );
      expect(await systemd.listUnitFiles()).to.deep.equal(['echo.service', 'echo.socket']);
    });
  });
});

import { expect } from 'chai';
import { describe, it, beforeEach, afterEach } from 'mocha';

import { Agent } from '../../agent/agent.js';
import { InMemorySystemdManager } from '../../agent/in-memory-systemd-manager.js';
import type { SystemdManager } from '../../agent/systemd-manager.js';
import { Engine } from '../../engine/engine.js';
import { buildConfig } from '../../fleetd/config.js';
import { formatNotice } from '../../fleetd/config-notice.js';
import type { ConfigMaterial } from '../../fleetd/config-loader.js';
import { Fleetd } from '../../fleetd/fleetd.js';
import type { FleetdApi, FleetdComponents, FleetdSettings } from '../../fleetd/fleetd-components.js';
import { AdjustableLogger } from '../../fleetd/log-level.js';
import { ManualClock, systemClock, type Clock } from '../../lib/clock.js';
import { FleetError, isFleetError } from '../../lib/errors.js';
import { MemoryLogger } from '../../lib/logger.js';
import { InMemoryRegistry } from '../../registry/in-memory-registry.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { unitRecord } from '../helpers/registry-builders.js';

const MACHINE = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const BOOT = 'boot-1';
const NO_TLS: ConfigMaterial = { etcdTls: undefined, apiTls: undefined };

function settings(argv: readonly string[] = [], material: ConfigMaterial = NO_TLS): FleetdSettings {
  const r = buildConfig({
    argv: ['--agent-ttl=2s', '--api-socket=/run/test-fleet.sock', '--unit-drop-dir=', ...argv],
    env: {},
  });
  if (!r.ok) throw new Error(r.problems.map(formatNotice).join('; '));
  return { config: r.config, material };
}

/**
 * A view of a shared object whose `close` is recorded instead of closing it: one fleetd's
 * connection to a registry or systemd that outlives it, as etcd and systemd outlive a process.
 */
function connection<T extends object>(target: T, onClose: (args: unknown[]) => void): T {
  return new Proxy(target, {
    get(t, prop) {
      if (prop === 'close') {
        return (...args: unknown[]) => {
          onClose(args);
          return Promise.resolve();
        };
      }
      const v: unknown = Reflect.get(t, prop, t);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

/** A machine: shared registry and systemd, and factories that record what fleetd does. */
class World {
  readonly registry = new InMemoryRegistry();
  readonly systemd = new InMemorySystemdManager();
  readonly events: string[] = [];
  readonly logger = new MemoryLogger();
  bootId = BOOT;
  readMachineId: () => Promise<string> = () => Promise.resolve(MACHINE);
  connectSystemd: () => Promise<SystemdManager> = () =>
    Promise.resolve(connection(this.systemd, () => this.events.push('systemd.close')));
  apis = 0;

  components(): FleetdComponents {
    const events = this.events;
    return {
      readMachineId: () => this.readMachineId(),
      readBootId: () => Promise.resolve(this.bootId),
      detectPublicIp: () => Promise.resolve('10.250.0.11'),
      createRegistry: ({ config }) => {
        events.push(`registry ${config.etcdKeyPrefix}`);
        return connection(this.registry, (args) =>
          events.push(`registry.close ${JSON.stringify(args[0] ?? {})}`),
        );
      },
      connectSystemd: async () => {
        const s = await this.connectSystemd();
        events.push('systemd');
        return s;
      },
      createAgent: (deps) => {
        const agent = new Agent(deps);
        return {
          get present() {
            return agent.present;
          },
          start: async (signal) => {
            events.push('agent.start');
            await agent.start(signal);
            events.push('agent.announced');
          },
          close: async (options) => {
            events.push(`agent.close ${JSON.stringify(options ?? {})}`);
            await agent.close(options);
          },
        };
      },
      createEngine: (deps) => {
        const engine = new Engine(deps);
        return {
          get leading() {
            return engine.leading;
          },
          start: () => {
            events.push('engine.start');
            engine.start();
          },
          close: async () => {
            events.push('engine.close');
            await engine.close();
          },
        };
      },
      createApi: (deps) => {
        const n = ++this.apis;
        const api: FleetdApi = {
          listenUnix: (path, options) => {
            const mode = typeof options === 'number' ? options : options?.mode;
            events.push(`api${n}.listenUnix ${path} ${(mode ?? 0).toString(8)} ready=${deps.ready()}`);
            return Promise.resolve();
          },
          listenTcp: (o) => {
            events.push(`api${n}.listenTcp ${o.host}:${o.port}`);
            return Promise.resolve({ port: o.port });
          },
          close: () => {
            events.push(`api${n}.close`);
            return Promise.resolve();
          },
        };
        this.readyOf = deps.ready;
        return api;
      },
    };
  }

  readyOf: () => boolean = () => false;

  fleetd(
    s: FleetdSettings = settings(),
    options: {
      clock?: Clock;
      verbosity?: number[];
      systemdConnectTimeoutMs?: number;
      onFatal?: (error: Error) => void;
    } = {},
  ): Fleetd {
    return new Fleetd({
      settings: s,
      components: this.components(),
      clock: options.clock ?? systemClock,
      logger: this.logger,
      version: '0.1.0-test',
      ...(options.systemdConnectTimeoutMs === undefined
        ? {}
        : { systemdConnectTimeoutMs: options.systemdConnectTimeoutMs }),
      setVerbosity: (v) => options.verbosity?.push(v),
      ...(options.onFatal === undefined ? {} : { onFatal: options.onFatal }),
    });
  }

  messages(): string[] {
    return this.logger.records.map((r) => r.message);
  }
}

/** Advances a manual clock until `promise` settles; returns how it settled. */
async function driveUntilSettled(clock: ManualClock, promise: Promise<unknown>): Promise<unknown> {
  let outcome: { error: unknown } | { value: unknown } | undefined;
  promise.then(
    (value: unknown) => (outcome = { value }),
    (error: unknown) => (outcome = { error }),
  );
  for (let i = 0; i < 1000 && outcome === undefined; i++) await clock.advance(100);
  if (outcome === undefined) throw new Error('did not settle');
  if ('error' in outcome) throw outcome.error;
  return outcome.value;
}

describe('fleetd/fleetd: the daemon wired over in-memory components', function () {
  this.timeout(10_000);
  let world: World;
  let running: Fleetd[];

  beforeEach(() => {
    world = new World();
    running = [];
  });

  afterEach(async () => {
    for (const f of running) await f.stop();
  });

  function track(f: Fleetd): Fleetd {
    running.push(f);
    return f;
  }

  it('starts registry, systemd, API, agent and engine in order and announces the machine with its boot ID', async () => {
    const fleetd = track(world.fleetd(settings(['--metadata=role=web'])));
    expect(fleetd.ready).to.equal(false);
    await fleetd.start();
    expect(world.events).to.deep.equal([
      'registry /fleet/',
      'systemd',
      'api1.listenUnix /run/test-fleet.sock 660 ready=false',
      'agent.start',
      'agent.announced',
      'engine.start',
    ]);
    expect(fleetd.ready).to.equal(true);
    expect(world.readyOf()).to.equal(true);
    expect(await world.registry.listMachines()).to.deep.equal([
      {
        id: MACHINE,
        publicIp: '10.250.0.11',
        metadata: { role: 'web' },
        version: '0.1.0-test',
        bootId: BOOT,
      },
    ]);
    await eventually(async () => expect(await world.registry.currentLeader()).to.equal(MACHINE));
    expect(world.messages()[0]).to.equal('Starting fleetd version 0.1.0-test');
    expect(world.messages()).to.include.members([
      'machine identity read',
      'etcd registry created',
      'connected to systemd',
      'API started',
      'agent started',
      'engine started',
      'fleetd started',
    ]);
    expect(fleetd.status()).to.deep.equal({
      state: 'running',
      machineId: MACHINE,
      announced: true,
      engine: 'leading',
    });
  });

  it('stops in reverse order: resigns, leaves units running and the presence to its lease', async () => {
    const fleetd = track(world.fleetd());
    await fleetd.start();
    await eventually(async () => expect(await world.registry.currentLeader()).to.equal(MACHINE));
    world.events.length = 0;
    await fleetd.stop();
    expect(world.events).to.deep.equal([
      'engine.close',
      'agent.close {"release":false}',
      'api1.close',
      'systemd.close',
      'registry.close {"keepPresences":true}',
    ]);
    expect(await world.registry.currentLeader()).to.equal(undefined);
    expect((await world.registry.listMachines()).map((m) => m.id)).to.deep.equal([MACHINE]);
    expect(fleetd.ready).to.equal(false);
    await fleetd.stop();
    expect(world.events).to.have.length(5);
  });

  it('reports a lost systemd connection as fatal, so that systemd restarts fleetd', async () => {
    const fatal: Error[] = [];
    const fleetd = track(world.fleetd(settings(), { onFatal: (e) => fatal.push(e) }));
    await fleetd.start();
    world.systemd.loseConnection();
    await eventually(() => expect(fatal).to.have.length(1));
    expect(world.messages()).to.include('lost the connection to systemd; fleetd must restart');
  });

  it('does not report the systemd connection closed by its own stop as fatal', async () => {
    const fatal: Error[] = [];
    const fleetd = world.fleetd(settings(), { onFatal: (e) => fatal.push(e) });
    await fleetd.start();
    await fleetd.stop();
    world.systemd.loseConnection();
    await new Promise((resolve) => setImmediate(resolve));
    expect(fatal).to.deep.equal([]);
  });

  it('answers not ready while the presence is lost, and ready again once announced', async () => {
    const fleetd = track(world.fleetd());
    await fleetd.start();
    expect(world.readyOf()).to.equal(true);
    world.registry.partition();
    world.registry.expireMachine(MACHINE);
    await eventually(() => expect(world.readyOf()).to.equal(false));
    world.registry.heal();
    await eventually(() => expect(world.readyOf()).to.equal(true), { timeoutMs: 5000 });
  });

  it('uses the configured public IP instead of detecting one', async () => {
    await track(world.fleetd(settings(['--public-ip=192.0.2.7']))).start();
    expect((await world.registry.listMachines())[0]?.publicIp).to.equal('192.0.2.7');
  });

  it('keeps a unit running across a restart of fleetd, with the same main PID', async () => {
    const first = track(world.fleetd());
    await first.start();
    await world.registry.submitUnit(unitRecord('web.service'), 'launched');
    await eventually(() => expect(world.systemd.mainPid('web.service')).to.be.a('number'));
    const pid = world.systemd.mainPid('web.service');
    await first.stop();
    expect(world.systemd.mainPid('web.service')).to.equal(pid);

    const second = track(world.fleetd());
    await second.start();
    await eventually(async () => {
      const states = await world.registry.listUnitStates({ unit: 'web.service' });
      expect(states.map((s) => `${s.activeState}/${s.subState}`)).to.deep.equal(['active/running']);
    });
    expect(world.systemd.mainPid('web.service')).to.equal(pid);
    expect(world.systemd.callCount('startUnit')).to.equal(1);
  });

  for (const [job, signal] of [
    ['restart', 'SIGTERM'],
    ['try-restart', 'SIGTERM'],
    [undefined, 'SIGUSR2'],
  ] as const) {
    it(`hands over on ${signal} with ${job === undefined ? 'no systemd job' : `a ${job} job`}: the unit keeps its main PID and the machine stays`, async () => {
      const fleetd = track(world.fleetd());
      await fleetd.start();
      await world.registry.submitUnit(unitRecord('web.service'), 'launched');
      await eventually(() => expect(world.systemd.mainPid('web.service')).to.be.a('number'));
      const pid = world.systemd.mainPid('web.service');
      world.systemd.pendingJob = job;
      world.events.length = 0;
      await fleetd.shutdown(signal);
      expect(world.events).to.include('agent.close {"release":false}');
      expect(world.systemd.mainPid('web.service')).to.equal(pid);
      expect(await world.systemd.listUnitFiles()).to.deep.equal(['web.service']);
      expect((await world.registry.listMachines()).map((m) => m.id)).to.deep.equal([MACHINE]);
    });
  }

  for (const [job, signal] of [
    ['stop', 'SIGTERM'],
    [undefined, 'SIGTERM'],
    [undefined, 'SIGINT'],
  ] as const) {
    it(`stops every unit and leaves at once on ${signal} with ${job === undefined ? 'no systemd job' : `a ${job} job`}`, async () => {
      const fleetd = track(world.fleetd());
      await fleetd.start();
      await world.registry.submitUnit(unitRecord('web.service'), 'launched');
      await eventually(() => expect(world.systemd.mainPid('web.service')).to.be.a('number'));
      world.systemd.pendingJob = job;
      world.events.length = 0;
      await fleetd.shutdown(signal);
      expect(world.events).to.include('agent.close {"stopUnits":true}');
      expect(world.systemd.mainPid('web.service')).to.equal(undefined);
      expect(await world.systemd.listUnitFiles()).to.deep.equal([]);
      expect(await world.registry.listMachines()).to.deep.equal([]);
      expect(await world.registry.listUnitStates({ unit: 'web.service' })).to.deep.equal([]);
    });
  }

  it('takes over the presence of an earlier run on the same boot at once', async () => {
    const first = track(world.fleetd());
    await first.start();
    await first.stop();
    const second = track(world.fleetd());
    await second.start();
    expect(second.ready).to.equal(true);
    expect(world.messages()).not.to.include('machine ID in use; waiting for the other presence to expire');
  });

  it('does not build an engine with disable_engine', async () => {
    const fleetd = track(world.fleetd(settings(['--disable-engine'])));
    await fleetd.start();
    expect(world.events).not.to.include('engine.start');
    expect(world.messages()).to.include('engine disabled (disable_engine)');
    expect(fleetd.status().engine).to.equal('disabled');
  });

  it('serves the API on TCP too when api_tcp is set', async () => {
    await track(world.fleetd(settings(['--api-tcp=127.0.0.1:4001', '--api-allow-plain-http']))).start();
    expect(world.events).to.include('api1.listenTcp 127.0.0.1:4001');
  });

  it('waits for an unreachable etcd, with the API up and answering not ready', async () => {
    world.registry.partition();
    const fleetd = track(world.fleetd());
    const started = fleetd.start();
    await eventually(() => expect(world.messages()).to.include('cannot announce machine; retrying'));
    expect(world.events).to.include('api1.listenUnix /run/test-fleet.sock 660 ready=false');
    expect(world.readyOf()).to.equal(false);
    world.registry.heal();
    await started;
    expect(world.readyOf()).to.equal(true);
  });

  it('ends a start that waits for etcd when stopped', async () => {
    world.registry.partition();
    const fleetd = track(world.fleetd());
    const started = fleetd.start();
    await eventually(() => expect(world.events).to.include('agent.start'));
    await fleetd.stop();
    await started;
    expect(world.events).to.include.members(['api1.close', 'registry.close {"keepPresences":true}']);
    expect(fleetd.status().state).to.equal('stopped');
  });

  it('builds nothing when stopped right after the start was asked for', async () => {
    const fleetd = track(world.fleetd());
    const started = fleetd.start();
    await fleetd.stop();
    await started;
    expect(world.events).to.deep.equal([]);
    expect(fleetd.status().state).to.equal('stopped');
  });

  it('fails after about agent_ttl when another live fleetd holds the machine ID', async () => {
    await world.registry.announceMachine(
      { id: MACHINE, publicIp: '10.250.0.99', metadata: {}, version: '0.1.0', bootId: 'other-boot' },
      10,
    );
    const clock = new ManualClock();
    const fleetd = track(world.fleetd(settings(['--disable-engine']), { clock }));
    let error: unknown;
    try {
      await driveUntilSettled(clock, fleetd.start());
    } catch (err) {
      error = err;
    }
    expect(isFleetError(error, 'MACHINE_ID_IN_USE'), String(error)).to.equal(true);
    expect((error as FleetError).message)
      .to.contain('public IP 10.250.0.99')
      .and.to.contain('longer than agent_ttl (2s)');
    // Tried at 0, 1, 2 and 3 s: given up once agent_ttl (2 s) and a second of grace had passed.
    expect(clock.now()).to.be.at.least(3000);
    expect(
      world.messages().filter((m) => m === 'machine ID in use; waiting for the other presence to expire'),
    ).to.have.length(3);
    expect(world.events).to.include.members(['api1.close', 'systemd.close']);
  });

  it('starts once a stale presence of the machine ID expires within agent_ttl', async () => {
    await world.registry.announceMachine(
      { id: MACHINE, publicIp: '10.250.0.11', metadata: {}, version: '0.1.0', bootId: 'previous-boot' },
      10,
    );
    const clock = new ManualClock();
    const fleetd = track(world.fleetd(settings(['--disable-engine']), { clock }));
    const started = fleetd.start();
    await eventually(() =>
      expect(world.messages()).to.include('machine ID in use; waiting for the other presence to expire'),
    );
    world.registry.expireMachine(MACHINE);
    await driveUntilSettled(clock, started);
    expect(fleetd.ready).to.equal(true);
  });

  it('fails without a machine ID, building nothing', async () => {
    world.readMachineId = () =>
      Promise.reject(
        new FleetError(
          'CONFIG_INVALID',
          'unable to determine the local machine ID: cannot read /etc/machine-id',
        ),
      );
    const fleetd = track(world.fleetd());
    let error: unknown;
    await fleetd.start().catch((err: unknown) => (error = err));
    expect(isFleetError(error, 'CONFIG_INVALID')).to.equal(true);
    expect(world.events).to.deep.equal([]);
  });

  it('retries an unreachable systemd, then fails and closes the registry', async () => {
    world.connectSystemd = () =>
      Promise.reject(new FleetError('SYSTEMD_UNAVAILABLE', 'no bus', { retryable: true }));
    const fleetd = track(world.fleetd(settings(), { systemdConnectTimeoutMs: 300 }));
    let error: unknown;
    await fleetd.start().catch((err: unknown) => (error = err));
    expect(isFleetError(error, 'SYSTEMD_UNAVAILABLE')).to.equal(true);
    expect(world.messages()).to.include('cannot connect to systemd; retrying');
    expect(world.events).to.deep.equal(['registry /fleet/', 'registry.close {"keepPresences":true}']);
  });

  describe('reload (SIGHUP)', () => {
    it('applies verbosity at once and restarts nothing', async () => {
      const verbosity: number[] = [];
      const fleetd = track(world.fleetd(settings(), { verbosity }));
      await fleetd.start();
      world.events.length = 0;
      const changes = await fleetd.reload(settings(['--verbosity=1']));
      expect(changes).to.deep.equal([{ option: 'verbosity', from: '0', to: '1', reload: 'live' }]);
      expect(verbosity).to.deep.equal([0, 1]);
      expect(world.events).to.deep.equal([]);
      expect(world.logger.records.find((r) => r.message === 'configuration reloaded')?.fields).to.deep.equal({
        changes: { verbosity: { from: '0', to: '1' } },
      });
    });

    it('logs a reload that changes nothing', async () => {
      const fleetd = track(world.fleetd());
      await fleetd.start();
      expect(await fleetd.reload(settings())).to.deep.equal([]);
      expect(world.messages()).to.include('configuration reloaded; nothing changed');
    });

    it('restarts only the API for API options', async () => {
      const fleetd = track(world.fleetd());
      await fleetd.start();
      world.events.length = 0;
      await fleetd.reload(settings(['--api-socket=/run/other.sock', '--token-limit=50']));
      expect(world.events).to.deep.equal(['api1.close', 'api2.listenUnix /run/other.sock 660 ready=true']);
    });

    it('restarts every component for other options, the machine staying announced', async () => {
      const fleetd = track(world.fleetd());
      await fleetd.start();
      world.events.length = 0;
      const changes = await fleetd.reload(settings(['--metadata=role=db']));
      expect(changes.map((c) => c.option)).to.deep.equal(['metadata']);
      expect(world.events).to.deep.equal([
        'engine.close',
        'agent.close {"release":false}',
        'api1.close',
        'systemd.close',
        'registry.close {"keepPresences":true}',
        'registry /fleet/',
        'systemd',
        'api2.listenUnix /run/test-fleet.sock 660 ready=false',
        'agent.start',
        'agent.announced',
        'engine.start',
      ]);
      expect((await world.registry.listMachines())[0]?.metadata).to.deep.equal({ role: 'db' });
      expect(world.messages()).to.include('Restarting server components');
      expect(fleetd.ready).to.equal(true);
    });

    it('restarts the components when a TLS file changed under the same path', async () => {
      const tls = (ca: string): ConfigMaterial => ({ etcdTls: { ca }, apiTls: undefined });
      const argv = ['--etcd-servers=https://127.0.0.1:2379', '--etcd-cafile=/etc/fleet/ca.pem'];
      const fleetd = track(world.fleetd(settings(argv, tls('old'))));
      await fleetd.start();
      const changes = await fleetd.reload(settings(argv, tls('new')));
      expect(changes).to.deep.equal([
        { option: 'etcd TLS files', from: 'previous contents', to: 'new contents', reload: 'server' },
      ]);
      expect(world.events.filter((e) => e === 'agent.start')).to.have.length(2);
    });

    it('stops fleetd when the components cannot start again', async () => {
      const fleetd = track(world.fleetd(settings(), { systemdConnectTimeoutMs: 100 }));
      await fleetd.start();
      world.connectSystemd = () => Promise.reject(new FleetError('SYSTEMD_FAILED', 'refused'));
      let error: unknown;
      await fleetd.reload(settings(['--units-directory=/run/other/'])).catch((err: unknown) => (error = err));
      expect(isFleetError(error, 'SYSTEMD_FAILED')).to.equal(true);
      expect(fleetd.status().state).to.equal('stopped');
      expect(world.messages()).to.include('components did not start again after the reload; stopping');
    });
  });
});

describe('fleetd/log-level: the adjustable logger', () => {
  it('drops lines below the level, for children made before a change too', () => {
    const memory = new MemoryLogger();
    const logging = new AdjustableLogger(memory, 'info');
    const child = logging.logger.child({ component: 'x' });
    child.debug('hidden');
    child.info('shown');
    logging.level = 'debug';
    child.debug('now shown');
    logging.logger.warn('warned');
    logging.level = 'error';
    child.warn('hidden too');
    child.error('failed');
    expect(memory.records.map((r) => `${r.level} ${r.message}`)).to.deep.equal([
      'info shown',
      'debug now shown',
      'warn warned',
      'error failed',
    ]);
    expect(memory.records[0]?.fields).to.deep.equal({ component: 'x' });
  });
});

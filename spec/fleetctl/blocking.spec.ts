import { expect } from 'chai';
import { describe, it, beforeEach, afterEach } from 'mocha';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { Autopilot, Harness, M1, M2 } from './harness.js';

const HELLO = '[Unit]\nDescription=Hello\n\n[Service]\nExecStart=/bin/sleep 100\n';
const GLOBAL = '[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nGlobal=true\n';
const ON_M1 = 'a1b2c3d4.../10.0.0.1';
/** For tests where something must succeed within the attempts that others exhaust. */
const SLOWER = { pollMs: 10, attemptMs: 500 };

describe('fleetctl load, start, stop, unload, destroy and restart (blocking)', () => {
  let h: Harness;
  let pilot: Autopilot;
  /** Every desired state the registry held, per unit, in order. */
  let history: Map<string, string[]>;

  beforeEach(async () => {
    h = await Harness.start();
    await h.machine(M1, '10.0.0.1');
    await h.machine(M2, '10.0.0.2');
    pilot = await new Autopilot(h, M1).start();
    history = new Map();
    await h.registry.watchUnits(() => {
      for (const [name, state] of h.registry.desired) {
        const seen = history.get(name) ?? [];
        if (seen.at(-1) !== state) seen.push(state);
        history.set(name, seen);
      }
    });
    await h.file('hello.service', HELLO);
    await h.file('g.service', GLOBAL);
  });

  afterEach(async () => {
    await pilot.stop();
    await h.close();
  });

  /** Waits until the API has served `n` more registry calls: fleetctl is busy polling. */
  async function pollsAfter(n: number): Promise<void> {
    const start = h.registry.requestCount;
    await eventually(() => expect(h.registry.requestCount).to.be.at.least(start + n), { timeoutMs: 10_000 });
  }

  describe('start', () => {
    it('creates, launches and waits, then prints where the unit runs', async () => {
      expect(await h.run(['start', 'hello.service'])).to.deep.equal({
        code: 0,
        stdout: `Unit hello.service inactive\nUnit hello.service launched on ${ON_M1}\n`,
        stderr: '',
      });
      expect(await h.desired('hello.service')).to.equal('launched');
    });

    it('prints "Triggered unit X start" once with --no-block, and does not wait', async () => {
      pilot.hold.add('hello.service');
      expect(await h.run(['start', '--no-block', 'hello.service'])).to.deep.equal({
        code: 0,
        stdout: 'Triggered unit hello.service start\n',
        stderr: '',
      });
      expect(await h.desired('hello.service')).to.equal('launched');
    });

    it('reports units already launched, in argument order', async () => {
      await h.file('a.service', HELLO);
      await h.file('b.service', HELLO);
      await h.run(['start', 'b.service']);
      const r = await h.run(['start', 'b.service', 'a.service', 'hello.service']);
      expect(r).to.deep.equal({
        code: 0,
        stdout:
          'Unit a.service inactive\nUnit hello.service inactive\n' +
          `Unit b.service launched on ${ON_M1}\nUnit a.service launched on ${ON_M1}\nUnit hello.service launched on ${ON_M1}\n`,
        stderr: '',
      });
    });

    it('triggers global units without waiting for them', async () => {
      expect(await h.run(['start', 'g.service'])).to.deep.equal({
        code: 0,
        stdout: 'Unit g.service inactive\nTriggered global unit g.service start\n',
        stderr: '',
      });
      expect(await h.desired('g.service')).to.equal('launched');
    });

    it('keeps waiting past the first attempt while systemd is still activating', async () => {
      pilot.systemd.set('hello.service', { active: 'activating', sub: 'start' });
      const started = h.run(['start', 'hello.service']);
      await eventually(async () => {
        const states = await h.registry.listUnitStates({ unit: 'hello.service' });
        expect(states[0]?.activeState).to.equal('activating');
      });
      // Several 100 ms attempts' worth of polls: fleet would have failed after the first one.
      await pollsAfter(60);
      pilot.systemd.delete('hello.service');
      await h.report('hello.service', M1, { active: 'active', sub: 'running' });
      expect(await started).to.deep.equal({
        code: 0,
        stdout: `Unit hello.service inactive\nUnit hello.service launched on ${ON_M1}\n`,
        stderr: '',
      });
    });

    it('exits 1 at once when systemd reports the unit failed', async () => {
      pilot.systemd.set('hello.service', { active: 'failed', sub: 'failed' });
      expect(await h.run(['start', 'hello.service'])).to.deep.equal({
        code: 1,
        stdout: `Unit hello.service inactive\nUnit hello.service launched on ${ON_M1}\n`,
        stderr:
          `Error waiting for units: unit hello.service failed on ${ON_M1}: systemd reports loaded/failed/failed; ` +
          'see "fleetctl status hello.service"\n',
      });
    });

    it('exits 1 when the unit stays inactive for a whole attempt after launching', async () => {
      pilot.systemd.set('hello.service', { active: 'inactive', sub: 'dead' });
      const r = await h.run(['start', 'hello.service']);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.equal(
        `Error waiting for units: unit hello.service is not running on ${ON_M1}: systemd reports loaded/inactive/dead; ` +
          'see "fleetctl status hello.service"\n',
      );
    });

    it('gives up on activation when the block attempts run out', async () => {
      pilot.systemd.set('hello.service', { active: 'activating', sub: 'start' });
      // Attempts long enough for the launch itself on a busy machine; activation never comes.
      const r = await h.run(['start', '--block-attempts=2', 'hello.service'], { timing: SLOWER });
      expect(r.code).to.equal(1);
      expect(r.stderr).to.equal(
        `Error waiting for units: unit hello.service did not become active on ${ON_M1}: systemd reports ` +
          'loaded/activating/start; see "fleetctl status hello.service"\n',
      );
    });

    it('says once why a unit cannot be placed and exits 1 when the attempts run out', async () => {
      await h.unit('stuck.service', 'inactive', ['MachineMetadata=region=mars']);
      pilot.hold.add('stuck.service');
      await h.unplaceable('stuck.service', 'no machine has metadata region=mars');
      expect(await h.run(['start', '--block-attempts=3', 'stuck.service'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr:
          'Unit stuck.service cannot be placed: no machine has metadata region=mars\n' +
          'Error waiting for units: timed out waiting for unit stuck.service to report state launched ' +
          '(cannot be placed: no machine has metadata region=mars)\n',
      });
    });

    it('takes --block-attempts before the command, with = or as two words', async () => {
      await h.unit('stuck.service', 'inactive', ['MachineMetadata=region=mars']);
      pilot.hold.add('stuck.service');
      await h.unplaceable('stuck.service', 'no machine has metadata region=mars');
      for (const flags of [['--block-attempts=3'], ['--block-attempts', '3']]) {
        const r = await h.run([...flags, 'start', 'stuck.service']);
        expect(r.code, flags.join(' ')).to.equal(1);
        expect(r.stderr, flags.join(' ')).to.contain('timed out waiting for unit stuck.service');
      }
      expect(await h.run(['--no-such-flag', 'start', 'stuck.service'])).to.deep.include({ code: 1 });
    });

    it('keeps waiting for an unplaceable unit until it is placed', async () => {
      await h.unit('later.service');
      pilot.hold.add('later.service');
      await h.unplaceable('later.service', 'every machine conflicts');
      const started = h.run(['start', 'later.service']);
      await eventually(() => expect(h.registry.desired.get('later.service')).to.equal('launched'));
      await pollsAfter(30);
      await h.unplaceable('later.service', undefined);
      await h.place('later.service', M2);
      await h.report('later.service', M2);
      expect(await started).to.deep.equal({
        code: 0,
        stdout: 'Unit later.service launched on f0e1d2c3.../10.0.0.2\n',
        stderr: 'Unit later.service cannot be placed: every machine conflicts\n',
      });
    });

    it('waits while the test plays engine and agent by hand', async () => {
      pilot.hold.add('hello.service');
      const started = h.run(['start', 'hello.service']);
      await eventually(() => expect(h.registry.desired.get('hello.service')).to.equal('launched'));
      await h.place('hello.service', M2);
      await pollsAfter(10);
      await h.report('hello.service', M2, { active: 'activating', sub: 'start' });
      await pollsAfter(10);
      await h.report('hello.service', M2);
      expect(await started).to.deep.equal({
        code: 0,
        stdout: 'Unit hello.service inactive\nUnit hello.service launched on f0e1d2c3.../10.0.0.2\n',
        stderr: '',
      });
    });

    it('keeps polling through a registry outage, saying so once', async () => {
      pilot.hold.add('hello.service');
      const started = h.run(['start', 'hello.service']);
      await eventually(() => expect(h.registry.desired.get('hello.service')).to.equal('launched'));
      h.registry.partition();
      await pollsAfter(20);
      h.registry.heal();
      await h.place('hello.service', M1);
      await h.report('hello.service', M1);
      const r = await started;
      expect(r.code).to.equal(0);
      expect(r.stdout).to.equal(`Unit hello.service inactive\nUnit hello.service launched on ${ON_M1}\n`);
      expect(r.stderr).to.match(
        /^WARNING: Error retrieving Unit\(hello\.service\) from Registry: API error 503: [^\n]*; still waiting\n$/,
      );
    });

    it('reports each unit: placed ones succeed, an unplaceable one fails the command', async () => {
      await h.file('a.service', HELLO);
      await h.unit('stuck.service');
      pilot.hold.add('stuck.service');
      await h.unplaceable('stuck.service', 'conflicts with a.service everywhere');
      const r = await h.run(['start', '--block-attempts=2', 'a.service', 'stuck.service'], {
        timing: SLOWER,
      });
      expect(r).to.deep.equal({
        code: 1,
        stdout: `Unit a.service inactive\nUnit a.service launched on ${ON_M1}\n`,
        stderr:
          'Unit stuck.service cannot be placed: conflicts with a.service everywhere\n' +
          'Error waiting for units: timed out waiting for unit stuck.service to report state launched ' +
          '(cannot be placed: conflicts with a.service everywhere)\n',
      });
    });

    it('replaces a launched unit: back to inactive first, then launched again', async () => {
      await h.run(['start', 'hello.service']);
      const before = h.registry.units.get('hello.service')?.hash;
      await h.file('hello.service', HELLO.replace('100', '200'));
      expect(await h.run(['start', '--replace', 'hello.service'])).to.deep.equal({
        code: 0,
        stdout: `Unit hello.service inactive\nUnit hello.service launched on ${ON_M1}\n`,
        stderr: '',
      });
      expect(h.registry.units.get('hello.service')?.hash).to.not.equal(before);
      expect(history.get('hello.service')).to.deep.equal(['inactive', 'launched', 'inactive', 'launched']);
    });
  });

  describe('load', () => {
    it('creates, loads and waits', async () => {
      expect(await h.run(['load', 'hello.service'])).to.deep.equal({
        code: 0,
        stdout: `Unit hello.service inactive\nUnit hello.service loaded on ${ON_M1}\n`,
        stderr: '',
      });
    });

    it('prints "Triggered unit X load" with --no-block and "Triggered global unit X load" for globals', async () => {
      pilot.hold.add('hello.service');
      expect((await h.run(['load', '--no-block', 'hello.service', 'g.service'])).stdout).to.equal(
        'Triggered unit hello.service load\nTriggered global unit g.service load\n',
      );
    });

    it('refuses to load a launched unit (stop is the way down) and exits 1', async () => {
      await h.run(['start', 'hello.service']);
      expect(await h.run(['load', 'hello.service'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'Unable to load unit hello.service in state launched\n',
      });
    });

    it('creates nothing and moves nothing when one unit cannot be created', async () => {
      const r = await h.run(['load', 'hello.service', 'nope.service']);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.equal(
        'Error creating units: unable to find Unit(nope.service) in Registry or on filesystem\n',
      );
      expect(await h.desired('hello.service')).to.equal('inactive');
    });
  });

  describe('stop', () => {
    it('stops a launched unit, waits for loaded, and says so on stderr', async () => {
      await h.run(['start', 'hello.service']);
      expect(await h.run(['stop', 'hello.service'])).to.deep.equal({
        code: 0,
        stdout: `Unit hello.service loaded on ${ON_M1}\n`,
        stderr: 'Successfully stopped units [hello.service].\n',
      });
    });

    it('prints "Triggered unit X stop" once with --no-block', async () => {
      await h.run(['start', 'hello.service']);
      pilot.hold.add('hello.service');
      expect(await h.run(['stop', '--no-block', 'hello.service'])).to.deep.equal({
        code: 0,
        stdout: 'Triggered unit hello.service stop\n',
        stderr: '',
      });
    });

    it('takes command flags before the command, as fleet did (fleetctl --no-block stop X)', async () => {
      await h.run(['start', 'hello.service']);
      pilot.hold.add('hello.service');
      expect(await h.run(['--no-block', 'stop', 'hello.service'])).to.deep.equal({
        code: 0,
        stdout: 'Triggered unit hello.service stop\n',
        stderr: '',
      });
      expect(
        await h.run(['--no-block=true', '--endpoint', h.endpoint, 'start', 'hello.service']),
      ).to.deep.equal({
        code: 0,
        stdout: 'Triggered unit hello.service start\n',
        stderr: '',
      });
    });

    it('refuses an inactive unit, names units not in the registry, and exits 1', async () => {
      await h.run(['submit', 'hello.service']);
      expect(await h.run(['stop', 'hello.service', 'ghost'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr:
          'Unit ghost.service not found in registry\nUnable to stop unit hello.service in state inactive\n',
      });
      expect(await h.run(['stop', 'ghost'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'Unit ghost.service not found in registry\n',
      });
    });

    it('names every unit not found and suggests the closest submitted name', async () => {
      await h.unit('trial-plain.service', 'launched');
      await h.unit('web@1.service', 'launched');
      expect(await h.run(['stop', 'trial-plian.service', 'web@2', 'zzz'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr:
          'Unit trial-plian.service not found in registry (did you mean trial-plain.service?)\n' +
          'Unit web@2.service not found in registry (did you mean web@1.service?)\n' +
          'Unit zzz.service not found in registry\n',
      });
      expect((await h.run(['unload', 'trial-plian'])).stderr).to.equal(
        'Unit trial-plian.service not found in registry (did you mean trial-plain.service?)\n',
      );
    });

    it('triggers global units', async () => {
      await h.run(['start', 'g.service']);
      expect(await h.run(['stop', 'g.service'])).to.deep.equal({
        code: 0,
        stdout: 'Triggered global unit g.service stop\n',
        stderr: '',
      });
      expect(await h.desired('g.service')).to.equal('loaded');
    });

    it('judges global units by the same state table: an inactive one cannot be stopped', async () => {
      await h.run(['submit', 'g.service']);
      expect(await h.run(['stop', 'g.service'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'Unable to stop unit g.service in state inactive\n',
      });
      expect(await h.desired('g.service')).to.equal('inactive');
      await h.run(['start', 'g.service']);
      expect(await h.run(['start', 'g.service'])).to.deep.equal({ code: 0, stdout: '', stderr: '' });
    });

    it('times out after the block attempts when the agent does not react', async () => {
      await h.run(['start', 'hello.service']);
      pilot.hold.add('hello.service');
      expect(await h.run(['stop', '--block-attempts', '2', 'hello.service'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'Error waiting for units: timed out waiting for unit hello.service to report state loaded\n',
      });
    });
  });

  describe('unload', () => {
    it('unloads and waits for inactive', async () => {
      await h.run(['start', 'hello.service']);
      expect(await h.run(['unload', 'hello'])).to.deep.equal({
        code: 0,
        stdout: 'Unit hello.service inactive\n',
        stderr: 'Successfully unloaded units [hello.service].\n',
      });
      expect(await h.registry.getPlacement('hello.service')).to.equal(undefined);
    });

    it('prints "Triggered unit X unload" with --no-block and exits 1 for unknown units only', async () => {
      await h.run(['start', 'hello.service']);
      pilot.hold.add('hello.service');
      expect((await h.run(['unload', '--no-block', 'hello.service'])).stdout).to.equal(
        'Triggered unit hello.service unload\n',
      );
      expect((await h.run(['unload', 'nope'])).code).to.equal(1);
    });
  });

  describe('destroy', () => {
    it('destroys units, skips unknown ones, and exits 0', async () => {
      await h.run(['start', 'hello.service']);
      expect(await h.run(['destroy', 'hello.service', 'ghost.service'])).to.deep.equal({
        code: 0,
        stdout: 'Destroyed hello.service\n',
        stderr: 'Unit ghost.service not found in registry\n',
      });
      expect(await h.registry.getUnit('hello.service')).to.equal(undefined);
      expect(await h.registry.listUnitStates({ unit: 'hello.service' })).to.deep.equal([]);
    });

    it('says when no named unit exists (exit 0), and accepts --no-block', async () => {
      expect(await h.run(['destroy', '--no-block', 'ghost'])).to.deep.equal({
        code: 0,
        stdout: '',
        stderr: 'Unit ghost.service not found in registry\n',
      });
    });

    it("matches a glob such as 'web-*' against the submitted units", async () => {
      for (const name of ['web-1.service', 'web-2.service', 'web-a.socket', 'db-1.service'])
        await h.unit(name, 'launched');
      expect(await h.run(['destroy', 'web-*'])).to.deep.equal({
        code: 0,
        stdout: 'Destroyed web-1.service\nDestroyed web-2.service\n',
        stderr: '',
      });
      expect(await h.run(['destroy', 'web-*.socket', 'cache-*'])).to.deep.equal({
        code: 0,
        stdout: 'Destroyed web-a.socket\n',
        stderr: 'No unit matching cache-*.service in registry\n',
      });
      expect([...h.registry.units.keys()]).to.deep.equal(['db-1.service']);
    });

    it('exits 1 when fleetd fails', async () => {
      await h.run(['submit', 'hello.service']);
      h.registry.partition();
      const r = await h.run(['destroy', 'hello.service']);
      h.registry.heal();
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/^Error destroying units: API error 50\d: /);
    });
  });

  describe('restart', () => {
    it('stops, waits for loaded, starts and waits for launched: it never hangs', async () => {
      await h.run(['start', 'hello.service']);
      expect(await h.run(['restart', 'hello.service'])).to.deep.equal({
        code: 0,
        stdout: `Unit hello.service loaded on ${ON_M1}\nUnit hello.service launched on ${ON_M1}\n`,
        stderr: '',
      });
      expect(history.get('hello.service')).to.deep.equal(['inactive', 'launched', 'loaded', 'launched']);
    });

    it('starts a loaded unit, and refuses inactive and unknown units', async () => {
      await h.run(['load', 'hello.service']);
      expect((await h.run(['restart', 'hello.service'])).stdout).to.equal(
        `Unit hello.service launched on ${ON_M1}\n`,
      );
      await h.file('idle.service', HELLO);
      await h.run(['submit', 'idle.service']);
      expect(await h.run(['restart', 'idle.service', 'ghost.service'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr:
          'Unit ghost.service not found in registry\nUnable to restart unit idle.service in state inactive\n',
      });
    });

    it('asks a unit that did not stop in time to run again, and exits 1', async () => {
      await h.run(['start', 'hello.service']);
      pilot.hold.add('hello.service');
      expect(await h.run(['restart', '--block-attempts=1', 'hello.service'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'Error waiting for units: timed out waiting for unit hello.service to report state loaded\n',
      });
      expect(await h.desired('hello.service')).to.equal('launched');
    });

    it('restarts a global unit: stopped until no machine runs it, then started', async () => {
      await h.run(['start', 'g.service']);
      await eventually(async () =>
        expect(await h.registry.listUnitStates({ unit: 'g.service' })).to.have.length(1),
      );
      expect(await h.run(['restart', 'g.service'])).to.deep.equal({
        code: 0,
        stdout: 'Triggered global unit g.service restart\n',
        stderr: '',
      });
      expect(history.get('g.service')).to.deep.equal(['inactive', 'launched', 'loaded', 'launched']);
    });
  });
});

import { expect } from 'chai';
import { describe, it } from 'mocha';

import { eventually } from '../../systemd-fixtures/eventually.js';
import { figure, onlyMachine, seconds, useE2eCluster } from './e2e-harness.js';

/** Every 2 s, to the 100 ms; Persistent=true as a cluster cron job would have it. */
const TICK_TIMER = [
  '[Unit]',
  'Description=fleet-ts e2e timer %n',
  '',
  '[Timer]',
  'OnCalendar=*:*:0/2',
  'AccuracySec=100ms',
  'Persistent=true',
  '',
].join('\n');
/** A oneshot that appends its machine's hostname to a file and exits 0. */
const TICK_SERVICE = [
  '[Unit]',
  'Description=fleet-ts e2e oneshot %n',
  '',
  '[Service]',
  'Type=oneshot',
  'ExecStart=/bin/sh -c "hostname >> /var/tmp/ticks"',
  '',
].join('\n');

/**
 * Trigger pairs on real systemd, driven by the built fleetctl: a timer and its oneshot service
 * land together and run, move together when their machine is killed, a path unit starts its
 * service when the watched file changes, a failed oneshot shows failed, and pins that keep a
 * timer from its service are refused with a reason. One two-machine cluster for the whole file.
 */
describe('e2e: timers and path units with the units they trigger, on two machines', function () {
  this.timeout(120_000);
  const {
    e,
    c,
    units: dir,
  } = useE2eCluster(
    { name: 'e2e-tr', machines: 2, agentTtl: '3s', fleetdConfig: ['engine_reconcile_interval=1'] },
    { ready: 'trigger cluster of 2', file: 'trigger' },
  );
  const write = (name: string, text: string): Promise<string> => dir().write(name, text);
  const lines = async (machine: string, file: string): Promise<string[]> => {
    const r = await c().exec(machine, ['sh', '-c', `cat ${file} 2>/dev/null; true`]);
    return r.stdout.split('\n').filter((l) => l !== '');
  };

  it('refuses a timer and its service pinned to different machines, naming both pins', async () => {
    const [m1, m2] = [c().machine('m1').machineId, c().machine('m2').machineId];
    await e().ok(['submit', await write('pinned.service', `${TICK_SERVICE}\n[X-Fleet]\nMachineID=${m2}\n`)]);
    await e().ok([
      'start',
      '--no-block',
      await write('pinned.timer', `${TICK_TIMER}\n[X-Fleet]\nMachineID=${m1}\n`),
    ]);
    const reason = `timer pinned.timer and its service pinned.service are pinned apart: MachineID ${m1} vs MachineID ${m2}`;
    await eventually(
      async () => {
        expect(await e().registry().getUnplaceable('pinned.timer')).to.equal(reason);
        expect(await e().registry().getUnplaceable('pinned.service')).to.equal(reason);
      },
      { timeoutMs: 10_000, intervalMs: 100, description: 'the contradiction to be recorded' },
    );
    await e().check({ 'pinned.timer': { state: 'absent' }, 'pinned.service': { state: 'absent' } });
    await e().destroy(['pinned.timer', 'pinned.service']);
  });

  it("starts the service of a path unit when the watched file changes, on the path unit's machine", async () => {
    await e().ok([
      'submit',
      await write(
        'watch.service',
        '[Service]\nType=oneshot\nExecStart=/bin/sh -c "cat /var/tmp/watched >> /var/tmp/seen"\n',
      ),
    ]);
    await e().ok(['start', await write('watch.path', '[Path]\nPathChanged=/var/tmp/watched\n')]);
    const placed = await e().settle({
      'watch.path': { state: 'active/waiting' },
      'watch.service': { state: 'inactive/dead' },
    });
    const m = onlyMachine(placed, 'watch.path');
    expect(onlyMachine(placed, 'watch.service'), 'the service is loaded with its path unit').to.equal(m);
    await c().exec(m, ['sh', '-c', 'echo hello-path > /var/tmp/watched']);
    await eventually(async () => expect(await lines(m, '/var/tmp/seen')).to.deep.equal(['hello-path']), {
      timeoutMs: 10_000,
      intervalMs: 100,
      description: 'watch.service to run once',
    });
    await e().settle({
      'watch.path': { state: 'active/waiting', on: [m] },
      'watch.service': { state: 'inactive/dead', on: [m] },
    });
    figure(`path unit: watch.service ran on ${m} when /var/tmp/watched changed`);
    await e().destroy(['watch.path', 'watch.service']);
  });

  it('shows a failed oneshot that its timer started as failed', async () => {
    await e().ok(['load', await write('broken.service', '[Service]\nType=oneshot\nExecStart=/bin/false\n')]);
    await e().ok(['start', await write('broken.timer', '[Timer]\nOnActiveSec=1s\nAccuracySec=100ms\n')]);
    const placed = await e().settle(
      // A timer that elapses once stays active/elapsed (RemainAfterElapse=yes, systemd's default).
      { 'broken.timer': { state: 'active/elapsed' }, 'broken.service': { state: 'failed/failed' } },
      { description: 'the timer to elapse once and its service to fail' },
    );
    expect(onlyMachine(placed, 'broken.service')).to.equal(onlyMachine(placed, 'broken.timer'));
    await e().destroy(['broken.timer', 'broken.service']);
  });

  it("runs tick.service on the timer's machine within its interval, before and after that machine is killed", async () => {
    const service = await write('tick.service', TICK_SERVICE);
    const timer = await write('tick.timer', TICK_TIMER);
    const loaded = await e().ok(['load', timer, service]);
    expect(loaded.stdout).to.match(/^Unit tick\.timer loaded on /m);
    const started = Date.now();
    const start = await e().ok(['start', 'tick.timer']);
    expect(start.stdout).to.match(/^Unit tick\.timer launched on /m);
    const placed = await e().settle({ 'tick.timer': { state: 'active/waiting' } });
    const m = onlyMachine(placed, 'tick.timer');
    await eventually(async () => expect((await lines(m, '/var/tmp/ticks')).length).to.be.at.least(2), {
      timeoutMs: 6_000,
      intervalMs: 100,
      description: `tick.service to run twice on ${m}`,
    });
    figure(`timer: tick.service ran twice on ${m} ${seconds(Date.now() - started)} after fleetctl start`);
    const rows = (await e().listUnits()).filter((r) => r.unit === 'tick.service');
    expect(rows.map((r) => e().shortName(r.machineId))).to.deep.equal([m]);
    expect(['inactive/dead', 'activating/start']).to.include(`${rows[0]?.active}/${rows[0]?.sub}`);
    const show = await c().exec(m, [
      'systemctl',
      'show',
      '-p',
      'LastTriggerUSec,NextElapseUSecRealtime',
      'tick.timer',
    ]);
    expect(show.stdout).to.match(/LastTriggerUSec=\S+/);
    expect(show.stdout).not.to.match(/LastTriggerUSec=n\/a/);
    const status = await e().inside(m, ['status', 'tick.timer']);
    expect(status.code, status.stderr).to.equal(0);
    expect(status.stdout).to.match(/Trigger: /);
    expect(status.stdout).to.match(/Triggers: .*tick\.service/);

    const other = m === 'm1' ? 'm2' : 'm1';
    const killed = Date.now();
    await c().killMachine(m);
    await e().settle(
      { 'tick.timer': { state: 'active/waiting', on: [other] } },
      { timeoutMs: 30_000, description: 'the timer to move' },
    );
    await eventually(async () => expect(await lines(other, '/var/tmp/ticks')).not.to.deep.equal([]), {
      timeoutMs: 6_000,
      intervalMs: 100,
      description: `tick.service to run on ${other}`,
    });
    figure(`timer: ${m} killed -> tick.service ran on ${other} after ${seconds(Date.now() - killed)}`);
    expect(
      (await e().listUnits()).filter((r) => r.unit === 'tick.service').map((r) => e().shortName(r.machineId)),
    ).to.deep.equal([other]);
    await e().destroy(['tick.timer', 'tick.service'], other);
  });
});

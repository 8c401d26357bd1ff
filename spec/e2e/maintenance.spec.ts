import { expect } from 'chai';
import { describe, it } from 'mocha';

import { eventually } from '../../systemd-fixtures/eventually.js';
import { figure, seconds, serviceFile, useE2eCluster } from './e2e-harness.js';

/**
 * Day-2 operations on three real machines, driven by the built fleetctl: draining a machine,
 * rolling a new version out, previewing a placement. One cluster for the file.
 */
describe('e2e: maintenance and updates on three machines', function () {
  this.timeout(180_000);
  const { e, units: dir } = useE2eCluster(
    { name: 'e2e-ops', machines: 3 },
    { ready: 'ops cluster of 3', file: 'ops' },
  );
  const id = (m: string): string => e().cluster.machine(m).machineId;

  /** `list-machines --fields machine,state`, as short name -> state. */
  async function machineStates(): Promise<Map<string, string>> {
    const r = await e().ok(['list-machines', '--no-legend', '--full', '--fields', 'machine,state']);
    return new Map(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(/\t+/))
        .map(([m = '', s = '']) => [e().shortName(m), s]),
    );
  }

  it('drains a machine of 6 units, never running one twice or more than max-parallel down, and reports a pinned one', async () => {
    const movable = Array.from({ length: 6 }, (_, i) => `drain${i}.service`);
    const pinned = 'drainpin.service';
    const all = [...movable, pinned];
    const paths = await Promise.all(movable.map((u) => dir().write(u, serviceFile())));
    const pinPath = await dir().write(pinned, serviceFile({ fleet: [`MachineID=${id('m1')}`] }));
    // m2 and m3 take no new units while drained, so everything starts on m1.
    await e().ok(['drain', '--no-block', id('m2')]);
    await e().ok(['drain', '--no-block', id('m3')]);
    await e().ok(['start', ...paths, pinPath]);
    expect(await machineStates()).to.deep.equal(
      new Map([
        ['m1', 'ready'],
        ['m2', 'drained'],
        ['m3', 'drained'],
      ]),
    );
    expect([...(await e().runningOn(all)).values()]).to.deep.equal(all.map(() => ['m1']));
    await e().ok(['undrain', id('m2')]);
    await e().ok(['undrain', id('m3')]);

    const maxParallel = 2;
    const started = Date.now();
    const progress = { done: false };
    const drain = e()
      .fleetctl(['drain', `--max-parallel=${maxParallel}`, id('m1')], undefined, { timeoutMs: 120_000 })
      .finally(() => {
        progress.done = true;
      });
    let polls = 0;
    let maxDown = 0;
    let twice: string[] = [];
    while (!progress.done) {
      const on = await e().runningOn(movable);
      polls++;
      twice = twice.concat(
        [...on].filter(([, ms]) => ms.length > 1).map(([u, ms]) => `${u} on ${ms.join('+')}`),
      );
      maxDown = Math.max(maxDown, [...on.values()].filter((ms) => ms.length === 0).length);
    }
    const r = await drain;
    figure(
      `drain of 6 units, max-parallel ${maxParallel}: ${seconds(Date.now() - started)}, ${polls} polls, at most ${maxDown} down`,
    );
    expect(twice, 'units running on two machines at once').to.deep.equal([]);
    expect(maxDown).to.be.at.most(maxParallel);
    expect(polls).to.be.greaterThan(3);
    // The pinned unit did not move: exit 1, named with why.
    expect(r.code, r.stdout + r.stderr).to.equal(1);
    expect(r.stdout).to.contain(`Cannot move ${pinned}: MachineID ${id('m1')} pins it to ${id('m1')}`);
    expect(r.stderr).to.contain(`Units not moved off ${id('m1')}: ${pinned}`);
    for (const u of movable) expect(r.stdout).to.contain(`Moved ${u}`);
    const on = await e().runningOn(all);
    for (const u of movable)
      expect(on.get(u), u).to.satisfy((ms: string[]) => ms.length === 1 && ms[0] !== 'm1');
    expect(on.get(pinned)).to.deep.equal(['m1']);
    expect((await machineStates()).get('m1')).to.equal('drained');
    // Nothing moves back on undrain.
    await e().ok(['undrain', id('m1')]);
    expect((await machineStates()).get('m1')).to.equal('ready');
    const after = await e().runningOn(all);
    expect(after).to.deep.equal(on);
    await e().destroy(all);
  });

  it('lets a machine drain and undrain itself through its own socket', async () => {
    const r = await e().inside('m3', ['drain', '--no-block', id('m3')]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    await eventually(async () => expect((await machineStates()).get('m3')).to.equal('drained'), {
      timeoutMs: 10_000,
    });
    const u = await e().inside('m3', ['undrain', id('m3')]);
    expect(u.code, u.stdout + u.stderr).to.equal(0);
    expect((await machineStates()).get('m3')).to.equal('ready');
  });
});

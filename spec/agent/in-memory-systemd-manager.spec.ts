import { expect } from 'chai';
import { describe, it, beforeEach } from 'mocha';

import { InMemorySystemdManager } from '../../agent/in-memory-systemd-manager.js';
import { isFleetError } from '../../lib/errors.js';
import { CONTRACT_UNITS, systemdManagerContract } from '../contracts/systemd-manager.contract.js';
import { eventually } from '../../systemd-fixtures/eventually.js';

systemdManagerContract('InMemorySystemdManager', () => {
  const manager = new InMemorySystemdManager();
  return Promise.resolve({
    manager,
    openAnother: () => Promise.resolve(new InMemorySystemdManager()),
    cleanup: () => manager.close(),
  });
});

describe('agent/in-memory-systemd-manager: controls', () => {
  let m: InMemorySystemdManager;

  beforeEach(() => {
    m = new InMemorySystemdManager();
  });

  async function loaded(name: string, contents: string = CONTRACT_UNITS.running): Promise<string> {
    await m.installUnit(name, contents);
    await m.reload();
    return name;
  }

  async function activeState(name: string): Promise<string | undefined> {
    return (await m.unitStatus([name]))[0]?.activeState;
  }

  it('keeps a unit not-found until its installed file is reloaded', async () => {
    await m.installUnit('a.service', CONTRACT_UNITS.running);
    expect((await m.unitStatus(['a.service']))[0]?.loadState).to.equal('not-found');
    await m.reload();
    expect((await m.unitStatus(['a.service']))[0]?.loadState).to.equal('loaded');
  });

  it('fails the next call of one method with a retryable SYSTEMD_UNAVAILABLE, then works', async () => {
    const name = await loaded('a.service');
    m.failNext('startUnit');
    expect(await m.unitStatus([name])).to.have.length(1);
    const err: unknown = await m.startUnit(name).catch((e: unknown) => e);
    expect(isFleetError(err, 'SYSTEMD_UNAVAILABLE') && err.retryable).to.equal(true);
    expect(await activeState(name)).to.equal('inactive');
    expect(await m.startUnit(name)).to.equal('done');
  });

  it('injects a given code, message and number of failures', async () => {
    m.failNext('reload', { code: 'SYSTEMD_FAILED', message: 'Access denied', count: 2 });
    for (let i = 0; i < 2; i++) {
      const err: unknown = await m.reload().catch((e: unknown) => e);
      expect(
        isFleetError(err, 'SYSTEMD_FAILED') && !err.retryable && err.message === 'Access denied',
      ).to.equal(true);
    }
    await m.reload();
  });

  it('counts calls per method and in total, failed ones included', async () => {
    m.failNext('listUnitFiles');
    await m.listUnitFiles().catch((e: unknown) => e);
    await m.listUnitFiles();
    await m.unitStatus([]);
    expect(m.callCount('listUnitFiles')).to.equal(2);
    expect(m.callCount('unitStatus')).to.equal(1);
    expect(m.callCount('reload')).to.equal(0);
    expect(m.callCount()).to.equal(3);
  });

  it('fails the next start of one unit only', async () => {
    const name = await loaded('a.service');
    m.failNextStart(name);
    expect(await m.startUnit(name)).to.equal('failed');
    expect(await activeState(name)).to.equal('failed');
    expect(await m.startUnit(name)).to.equal('done');
    expect(await activeState(name)).to.equal('active');
  });

  it('gives every start a new main pid and keeps it while the unit runs', async () => {
    const name = await loaded('a.service');
    expect(m.mainPid(name)).to.equal(undefined);
    await m.startUnit(name);
    const first = m.mainPid(name);
    await m.startUnit(name);
    expect(m.mainPid(name)).to.equal(first);
    await m.stopUnit(name);
    expect(m.mainPid(name)).to.equal(undefined);
    await m.startUnit(name);
    expect(m.mainPid(name)).to.be.greaterThan(first!);
  });

  it('crashes a running unit to failed/failed and notifies subscribers', async () => {
    const name = await loaded('a.service');
    await m.startUnit(name);
    const seen: string[] = [];
    await m.subscribe((unit) => seen.push(unit));
    m.crashUnit(name);
    expect(await m.unitStatus([name])).to.deep.equal([
      { name, loadState: 'loaded', activeState: 'failed', subState: 'failed' },
    ]);
    expect(m.mainPid(name)).to.equal(undefined);
    await eventually(() => expect(seen).to.deep.equal([name]));
  });

  it('lets a running unit exit cleanly to inactive/dead', async () => {
    const name = await loaded('a.service');
    await m.startUnit(name);
    m.exitUnit(name);
    expect(await activeState(name)).to.equal('inactive');
    m.exitUnit(name);
    m.crashUnit(name);
    expect(await activeState(name)).to.equal('inactive');
  });

  it('links every installed unit and enables only units with [Install] when asked', async () => {
    await m.installUnit('plain.service', CONTRACT_UNITS.running, { enable: true });
    await m.installUnit('wanted.service', CONTRACT_UNITS.installable, { enable: true });
    await m.installUnit('linked.service', CONTRACT_UNITS.installable);
    expect(['plain', 'wanted', 'linked'].map((n) => m.isEnabled(`${n}.service`))).to.deep.equal([
      false,
      true,
      false,
    ]);
    expect(m.isLinked('linked.service')).to.equal(true);
    await m.removeUnit('wanted.service');
    expect(m.isLinked('wanted.service') || m.isEnabled('wanted.service')).to.equal(false);
  });

  it('does not fail a oneshot whose command failure is ignored with "-"', async () => {
    const name = await loaded('a.service', '[Service]\nType=oneshot\nExecStart=-/bin/false\n');
    expect(await m.startUnit(name)).to.equal('done');
    expect(await activeState(name)).to.equal('inactive');
  });

  it('notifies on reload for units whose definition changed', async () => {
    const seen: string[] = [];
    await m.subscribe((unit) => seen.push(unit));
    await loaded('a.service');
    await m.reload();
    await eventually(() => expect(seen).to.deep.equal(['a.service']));
  });

  it('reports non-service units active in their own sub-state', async () => {
    const name = await loaded('a.socket', '[Socket]\nListenStream=8080\n');
    expect(await m.startUnit(name)).to.equal('done');
    expect((await m.unitStatus([name]))[0]?.subState).to.equal('listening');
  });
});

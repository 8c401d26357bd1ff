import { expect } from 'chai';
import { describe, it, beforeEach, afterEach } from 'mocha';
import { randomBytes } from 'node:crypto';

import type { SystemdManager, UnitStatus } from '../../agent/systemd-manager.js';
import { isFleetError } from '../../lib/errors.js';
import { eventually } from '../../systemd-fixtures/eventually.js';

/** What one contract test needs: a manager over a systemd, with an empty units directory. */
export interface SystemdContractSubject {
  readonly manager: SystemdManager;
  /** Another manager over the same systemd, which the test closes (for close semantics). */
  openAnother(): Promise<SystemdManager>;
  /** Releases what the subject made (the units directory, connections). */
  cleanup(): Promise<void>;
}

/** Unit files the contract uses; each says how real systemd treats it, and the fake mimics that. */
export const CONTRACT_UNITS = {
  /** A service that runs until stopped. */
  running: '[Unit]\nDescription=fleet-ts contract: runs\n\n[Service]\nExecStart=/bin/sleep 600\n',
  /** The same, with an [Install] section for enable. */
  installable:
    '[Unit]\nDescription=fleet-ts contract: enabled\n\n[Service]\nExecStart=/bin/sleep 600\n\n' +
    '[Install]\nWantedBy=multi-user.target\n',
  /** Type=simple: the start job is done once the process runs; it exits 1 right after. */
  failing: '[Service]\nExecStart=/bin/false\n',
  /** Type=oneshot: the start job itself fails. */
  failingOneshot: '[Service]\nType=oneshot\nExecStart=/bin/false\n',
  /** Type=oneshot that stays active/exited after its command succeeded. */
  oneshotRemaining: '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n',
  /** A service with nothing to run: systemd refuses to load it (bad-setting). */
  nothingToRun: '[Unit]\nDescription=fleet-ts contract: nothing to run\n',
} as const;

const WAIT = { timeoutMs: 10_000 } as const;

function status(name: string, loadState: string, activeState: string, subState: string): UnitStatus {
  return { name, loadState, activeState, subState };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('expected a rejection, got a result'),
    (err: unknown) => err,
  );
}

/** Records the unit names a subscription is called with. */
function recorder(): { readonly seen: string[]; readonly listener: (unit: string) => void } {
  const seen: string[] = [];
  return { seen, listener: (unit) => seen.push(unit) };
}

/**
 * The systemd manager contract: `DbusSystemdManager` against real systemd and
 * `InMemorySystemdManager` must both pass it unchanged. Unit names are unique per run and test,
 * and every unit a test touched is stopped, removed and reloaded away afterwards.
 */
export function systemdManagerContract(label: string, setup: () => Promise<SystemdContractSubject>): void {
  describe(`systemd manager contract: ${label}`, function () {
    this.timeout(30_000);
    const run = randomBytes(3).toString('hex');
    let counter = 0;
    let subject: SystemdContractSubject;
    let m: SystemdManager;
    let used: string[] = [];

    /** A fresh unit name: `sdm-<run>-<n>-<base>.<type>`. */
    function unitName(base = 'u', type = 'service'): string {
      const name = `sdm-${run}-${++counter}-${base}.${type}`;
      used.push(name);
      return name;
    }

    /** Installs and reloads: the unit is known to systemd. */
    async function load(contents: string = CONTRACT_UNITS.running, name = unitName()): Promise<string> {
      await m.installUnit(name, contents);
      await m.reload();
      return name;
    }

    async function statusOf(name: string): Promise<UnitStatus> {
      const [found] = await m.unitStatus([name]);
      return found!;
    }

    beforeEach(async () => {
      subject = await setup();
      m = subject.manager;
      used = [];
    });

    afterEach(async () => {
      for (const name of used) {
        await m.stopUnit(name);
        await m.removeUnit(name);
      }
      await m.reload();
      await subject.cleanup();
    });

    describe('unit files', () => {
      it('starts with no unit files', async () => {
        expect(await m.listUnitFiles()).to.deep.equal([]);
      });

      it('writes a unit file that reads back and is listed', async () => {
        const name = unitName();
        await m.installUnit(name, CONTRACT_UNITS.running);
        expect(await m.readUnitFile(name)).to.equal(CONTRACT_UNITS.running);
        expect(await m.listUnitFiles()).to.deep.equal([name]);
      });

      it('answers undefined for a unit file that is not there', async () => {
        expect(await m.readUnitFile(unitName())).to.equal(undefined);
      });

      it('lists unit files sorted by name', async () => {
        const names = [unitName('c'), unitName('a', 'socket'), unitName('b', 'timer')];
        for (const name of names) await m.installUnit(name, '[Unit]\nDescription=listed\n');
        expect(await m.listUnitFiles()).to.deep.equal([...names].sort());
      });

      it('installs the same file twice without harm, and replaces changed contents', async () => {
        const name = unitName();
        await m.installUnit(name, CONTRACT_UNITS.running);
        await m.installUnit(name, CONTRACT_UNITS.running);
        expect(await m.listUnitFiles()).to.deep.equal([name]);
        await m.installUnit(name, CONTRACT_UNITS.failing);
        expect(await m.readUnitFile(name)).to.equal(CONTRACT_UNITS.failing);
      });

      it('rejects a name that is not a unit name with UNIT_NAME_INVALID', async () => {
        for (const bad of ['../escape.service', 'no-suffix', 'a/b.service']) {
          const err = await rejection(m.installUnit(bad, CONTRACT_UNITS.running));
          expect(isFleetError(err, 'UNIT_NAME_INVALID'), `${bad}: ${String(err)}`).to.equal(true);
        }
        expect(await m.listUnitFiles()).to.deep.equal([]);
      });
    });

    describe('loading', () => {
      it('loads an installed unit on reload as loaded and inactive/dead', async () => {
        const name = await load();
        expect(await statusOf(name)).to.deep.equal(status(name, 'loaded', 'inactive', 'dead'));
      });

      it('loads a unit installed with enable', async () => {
        const name = unitName();
        await m.installUnit(name, CONTRACT_UNITS.installable, { enable: true });
        await m.installUnit(name, CONTRACT_UNITS.installable, { enable: true });
        await m.reload();
        expect(await statusOf(name)).to.deep.equal(status(name, 'loaded', 'inactive', 'dead'));
      });

      it('reports unknown units as not-found and inactive/dead, in the order asked', async () => {
        const known = await load();
        const unknown = unitName('unknown');
        expect(await m.unitStatus([unknown, known])).to.deep.equal([
          status(unknown, 'not-found', 'inactive', 'dead'),
          status(known, 'loaded', 'inactive', 'dead'),
        ]);
        expect(await m.unitStatus([])).to.deep.equal([]);
      });

      it('reports a service without ExecStart as bad-setting and refuses to start it', async () => {
        const name = await load(CONTRACT_UNITS.nothingToRun);
        expect((await statusOf(name)).loadState).to.equal('bad-setting');
        const err = await rejection(m.startUnit(name));
        expect(isFleetError(err, 'SYSTEMD_FAILED'), String(err)).to.equal(true);
        expect((err as Error).message).to.contain(name);
      });
    });

    describe('jobs', () => {
      it('starts a unit: the job is done and the unit active/running', async () => {
        const name = await load();
        expect(await m.startUnit(name)).to.equal('done');
        expect(await statusOf(name)).to.deep.equal(status(name, 'loaded', 'active', 'running'));
      });

      it('starts a running unit again as done and leaves it running', async () => {
        const name = await load();
        await m.startUnit(name);
        expect(await m.startUnit(name)).to.equal('done');
        expect(await m.startUnit(name)).to.equal('done');
        expect(await statusOf(name)).to.deep.equal(status(name, 'loaded', 'active', 'running'));
      });

      it('runs several jobs at once, each resolving with its own result', async () => {
        const good = [await load(), await load(), await load()];
        const bad = await load(CONTRACT_UNITS.failingOneshot);
        const results = await Promise.all([...good, bad].map((name) => m.startUnit(name)));
        expect(results).to.deep.equal(['done', 'done', 'done', 'failed']);
      });

      it('stops a unit to inactive/dead', async () => {
        const name = await load();
        await m.startUnit(name);
        expect(await m.stopUnit(name)).to.equal('done');
        expect(await statusOf(name)).to.deep.equal(status(name, 'loaded', 'inactive', 'dead'));
      });

      it('stops a unit that is not running, or that systemd does not know, as done', async () => {
        const name = await load();
        expect(await m.stopUnit(name)).to.equal('done');
        expect(await m.stopUnit(unitName('unknown'))).to.equal('done');
      });

      it('reports a service whose command fails as failed', async () => {
        const name = await load(CONTRACT_UNITS.failing);
        // Type=simple: systemd's job is done once the process runs; the failure comes after.
        expect(await m.startUnit(name)).to.equal('done');
        await eventually(async () => {
          expect(await statusOf(name)).to.deep.equal(status(name, 'loaded', 'failed', 'failed'));
        }, WAIT);
      });

      it('ends the start job of a failing oneshot as failed, and stopping keeps it failed', async () => {
        const name = await load(CONTRACT_UNITS.failingOneshot);
        expect(await m.startUnit(name)).to.equal('failed');
        expect(await statusOf(name)).to.deep.equal(status(name, 'loaded', 'failed', 'failed'));
        expect(await m.stopUnit(name)).to.equal('done');
        expect((await statusOf(name)).activeState).to.equal('failed');
      });

      it('starts a oneshot with RemainAfterExit to active/exited', async () => {
        const name = await load(CONTRACT_UNITS.oneshotRemaining);
        expect(await m.startUnit(name)).to.equal('done');
        expect(await statusOf(name)).to.deep.equal(status(name, 'loaded', 'active', 'exited'));
      });

      it('refuses to start a unit that is not installed with SYSTEMD_FAILED naming it', async () => {
        const name = unitName('missing');
        const err = await rejection(m.startUnit(name));
        expect(isFleetError(err, 'SYSTEMD_FAILED'), String(err)).to.equal(true);
        expect((err as Error).message)
          .to.contain(name)
          .and.to.contain('StartUnit');
      });
    });

    describe('removal', () => {
      it('removes a unit: the file is gone and the unit not-found after reload', async () => {
        const name = await load();
        await m.removeUnit(name);
        expect(await m.readUnitFile(name)).to.equal(undefined);
        expect(await m.listUnitFiles()).to.deep.equal([]);
        await m.reload();
        expect(await statusOf(name)).to.deep.equal(status(name, 'not-found', 'inactive', 'dead'));
      });

      it('removes idempotently, also a unit that was never installed', async () => {
        const name = await load(CONTRACT_UNITS.installable);
        await m.removeUnit(name);
        await m.removeUnit(name);
        await m.removeUnit(unitName('never'));
        await m.reload();
        expect(await m.listUnitFiles()).to.deep.equal([]);
        expect((await statusOf(name)).loadState).to.equal('not-found');
      });

      it('removes a unit installed with enable', async () => {
        const name = unitName();
        await m.installUnit(name, CONTRACT_UNITS.installable, { enable: true });
        await m.reload();
        await m.removeUnit(name);
        await m.reload();
        expect(await statusOf(name)).to.deep.equal(status(name, 'not-found', 'inactive', 'dead'));
      });

      it('clears the failed state of a removed unit', async () => {
        const name = await load(CONTRACT_UNITS.failingOneshot);
        expect(await m.startUnit(name)).to.equal('failed');
        await m.removeUnit(name);
        await m.reload();
        expect(await statusOf(name)).to.deep.equal(status(name, 'not-found', 'inactive', 'dead'));
      });

      it('leaves a running unit running when its file goes, until it is stopped', async () => {
        const name = await load();
        await m.startUnit(name);
        await m.removeUnit(name);
        await m.reload();
        expect(await statusOf(name)).to.deep.equal(status(name, 'not-found', 'active', 'running'));
        expect(await m.stopUnit(name)).to.equal('done');
        expect((await statusOf(name)).activeState).to.equal('inactive');
      });
    });

    describe('subscribe', () => {
      it('calls the subscriber with the unit name when a unit starts and stops', async () => {
        // "-" and "@" are escaped in systemd's object paths: the name must come back decoded.
        const name = await load(CONTRACT_UNITS.running, unitName('web-app@a-b'));
        const { seen, listener } = recorder();
        const subscription = await m.subscribe(listener);
        await m.startUnit(name);
        await eventually(() => expect(seen).to.include(name), WAIT);
        seen.length = 0;
        await m.stopUnit(name);
        await eventually(() => expect(seen).to.include(name), WAIT);
        await subscription.close();
      });

      it('calls the subscriber when a unit fails on its own', async () => {
        const name = await load(CONTRACT_UNITS.failing);
        const { seen, listener } = recorder();
        const subscription = await m.subscribe(listener);
        await m.startUnit(name);
        await eventually(async () => {
          expect(seen).to.include(name);
          expect((await statusOf(name)).activeState).to.equal('failed');
        }, WAIT);
        await subscription.close();
      });

      it('stops calling a closed subscription and keeps calling the others', async () => {
        const name = await load();
        const closed = recorder();
        const open = recorder();
        const first = await m.subscribe(closed.listener);
        const second = await m.subscribe(open.listener);
        await first.close();
        await first.close();
        await m.startUnit(name);
        await eventually(() => expect(open.seen).to.include(name), WAIT);
        expect(closed.seen).to.not.include(name);
        await second.close();
      });
    });

    describe('close', () => {
      it('closes idempotently and then fails calls with SYSTEMD_UNAVAILABLE', async () => {
        const other = await subject.openAnother();
        await other.close();
        await other.close();
        const err = await rejection(other.unitStatus([unitName()]));
        expect(isFleetError(err, 'SYSTEMD_UNAVAILABLE'), String(err)).to.equal(true);
      });
    });
  });
}

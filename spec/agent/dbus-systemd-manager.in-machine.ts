/**
 * Runs INSIDE a lab machine, against its real systemd on its system bus: the systemd manager
 * contract and the D-Bus adapter's own tests. spec/agent/dbus-systemd-manager.spec.ts boots the
 * machine, runs this file there with mocha (the build is bound at /opt/fleet-ts) and checks the
 * report. Not named *.spec.ts, so the host's own test run never picks it up.
 */
import { expect } from 'chai';
import { describe, it, beforeEach, afterEach } from 'mocha';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstat, readdir, rm, stat } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { DbusSystemdManager } from '../../agent/dbus-systemd-manager.js';
import { isFleetError } from '../../lib/errors.js';
import { CONTRACT_UNITS, systemdManagerContract } from '../contracts/systemd-manager.contract.js';
import { eventually } from '../../systemd-fixtures/eventually.js';

const run = promisify(execFile);
const SYSTEM_BUS_SOCKET = '/run/dbus/system_bus_socket';

/** A units directory of its own per test, so tests never see each other's files. */
function freshDirectory(): string {
  return `/run/fleet/contract-${randomBytes(4).toString('hex')}/`;
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

async function systemctl(...args: string[]): Promise<string> {
  const result = await run('systemctl', args).catch((err: unknown) => err as { stdout: string });
  return result.stdout.trim();
}

/**
 * A unix-socket proxy in front of the system bus, so a test can cut one client's connection the
 * way a restarting dbus-daemon would, without touching the machine's bus.
 */
async function busProxy(): Promise<{ path: string; cut(): void; close(): Promise<void> }> {
  const path = `/run/fleet-ts-bus-proxy-${randomBytes(4).toString('hex')}.sock`;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(SYSTEM_BUS_SOCKET);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => socket.destroy());
      socket.on('close', () => sockets.delete(socket));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const cut = (): void => {
    for (const socket of sockets) socket.end();
  };
  return {
    path,
    cut,
    close: async () => {
      cut();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

systemdManagerContract('DbusSystemdManager on real systemd', async () => {
  const unitsDirectory = freshDirectory();
  const manager = await DbusSystemdManager.connect({ unitsDirectory, jobTimeoutMs: 20_000 });
  return {
    manager,
    openAnother: () => DbusSystemdManager.connect({ unitsDirectory }),
    cleanup: async () => {
      await manager.close();
      await rm(unitsDirectory, { recursive: true, force: true });
    },
  };
});

describe('DbusSystemdManager on real systemd: the adapter', function () {
  this.timeout(30_000);
  const prefix = `sdm-adapter-${randomBytes(3).toString('hex')}`;
  let counter = 0;
  let dir: string;
  let m: DbusSystemdManager;
  let used: string[] = [];

  function unitName(): string {
    const name = `${prefix}-${++counter}.service`;
    used.push(name);
    return name;
  }

  beforeEach(async () => {
    dir = freshDirectory();
    m = await DbusSystemdManager.connect({ unitsDirectory: dir, jobTimeoutMs: 20_000 });
    used = [];
  });

  afterEach(async () => {
    for (const name of used) {
      await m.stopUnit(name);
      await m.removeUnit(name);
    }
    await m.reload();
    await m.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates the units directory 0755 and writes files 0644 atomically, whatever the umask', async () => {
    const first = unitName();
    await m.installUnit(first, CONTRACT_UNITS.running);
    expect((await stat(dir)).mode & 0o777).to.equal(0o755);
    const previous = process.umask(0o077);
    try {
      const second = unitName();
      await m.installUnit(second, CONTRACT_UNITS.running);
      expect((await stat(join(dir, second))).mode & 0o777).to.equal(0o644);
    } finally {
      process.umask(previous);
    }
    expect((await stat(join(dir, first))).mode & 0o777).to.equal(0o644);
    // No temporary file is left next to them.
    expect((await readdir(dir)).sort()).to.deep.equal([...used].sort());
  });

  it('links at runtime (linked-runtime), enables at runtime with enable, and unlinks on remove', async () => {
    const linked = unitName();
    const enabled = unitName();
    await m.installUnit(linked, CONTRACT_UNITS.installable);
    await m.installUnit(enabled, CONTRACT_UNITS.installable, { enable: true });
    await m.reload();
    expect(await systemctl('is-enabled', linked)).to.equal('linked-runtime');
    expect(await systemctl('is-enabled', enabled)).to.equal('enabled-runtime');
    expect(await exists(`/run/systemd/system/multi-user.target.wants/${enabled}`)).to.equal(true);

    await m.removeUnit(linked);
    await m.removeUnit(enabled);
    for (const link of [linked, enabled, `multi-user.target.wants/${enabled}`]) {
      expect(await exists(`/run/systemd/system/${link}`), link).to.equal(false);
    }
  });

  it('hears about units changed by another client, through signals', async () => {
    const name = unitName();
    await m.installUnit(name, CONTRACT_UNITS.running);
    await m.reload();
    const seen = new Set<string>();
    const subscription = await m.subscribe((unit) => seen.add(unit));
    await run('systemctl', ['start', name]);
    await eventually(() => expect(seen.has(name)).to.equal(true), { timeoutMs: 10_000 });
    await subscription.close();
  });

  it('hears about a unit that dies without any job, from PropertiesChanged on its escaped path', async () => {
    const name = unitName();
    await m.installUnit(name, CONTRACT_UNITS.running);
    await m.reload();
    await m.startUnit(name);
    const seen = new Set<string>();
    const subscription = await m.subscribe((unit) => seen.add(unit));
    // KillUnit queues no job, so no JobRemoved: only the unit's PropertiesChanged says it died.
    await run('systemctl', ['kill', '--signal=SIGKILL', name]);
    await eventually(
      async () => {
        expect(seen.has(name)).to.equal(true);
        expect((await m.unitStatus([name]))[0]?.activeState).to.equal('failed');
      },
      { timeoutMs: 10_000 },
    );
    await subscription.close();
  });

  it('resolves many starts of an active unit, whose jobs may finish before their replies arrive', async () => {
    const name = unitName();
    await m.installUnit(name, CONTRACT_UNITS.running);
    await m.reload();
    await m.startUnit(name);
    const results = await Promise.all(Array.from({ length: 20 }, () => m.startUnit(name)));
    expect(new Set(results)).to.deep.equal(new Set(['done']));
  });

  it('gives up on a job that outlasts jobTimeoutMs with a retryable SYSTEMD_UNAVAILABLE', async () => {
    const name = unitName();
    await m.installUnit(name, '[Service]\nType=oneshot\nExecStart=/bin/sleep 600\n');
    await m.reload();
    const impatient = await DbusSystemdManager.connect({ unitsDirectory: dir, jobTimeoutMs: 300 });
    try {
      const err: unknown = await impatient.startUnit(name).catch((e: unknown) => e);
      expect(isFleetError(err, 'SYSTEMD_UNAVAILABLE') && err.retryable, String(err)).to.equal(true);
      expect((err as Error).message)
        .to.contain(name)
        .and.to.contain('StartUnit');
    } finally {
      await impatient.close();
    }
    expect((await m.unitStatus([name]))[0]?.activeState).to.equal('activating');
  });

  it('fails a job still waiting at once when the manager closes', async () => {
    const name = unitName();
    await m.installUnit(name, '[Service]\nType=oneshot\nExecStart=/bin/sleep 600\n');
    await m.reload();
    const closing = await DbusSystemdManager.connect({ unitsDirectory: dir });
    const started = closing.startUnit(name).catch((e: unknown) => e);
    await eventually(async () => expect((await m.unitStatus([name]))[0]?.activeState).to.equal('activating'));
    await closing.close();
    const err = await started;
    expect(isFleetError(err, 'SYSTEMD_UNAVAILABLE'), String(err)).to.equal(true);
  });

  it('fails a waiting job at once when the bus drops the connection, and every later call', async () => {
    const name = unitName();
    await m.installUnit(name, '[Service]\nType=oneshot\nExecStart=/bin/sleep 600\n');
    await m.reload();
    const proxy = await busProxy();
    const cut = await DbusSystemdManager.connect({
      busAddress: `unix:path=${proxy.path}`,
      unitsDirectory: dir,
    });
    try {
      const started = cut.startUnit(name).catch((e: unknown) => e);
      await eventually(async () =>
        expect((await m.unitStatus([name]))[0]?.activeState).to.equal('activating'),
      );
      proxy.cut();
      const err = await started;
      expect(isFleetError(err, 'SYSTEMD_UNAVAILABLE'), String(err)).to.equal(true);
      const later: unknown = await cut.unitStatus([name]).catch((e: unknown) => e);
      expect(isFleetError(later, 'SYSTEMD_UNAVAILABLE') && !later.retryable, String(later)).to.equal(true);
    } finally {
      await cut.close();
      await proxy.close();
    }
  });

  it('refuses to connect to a bus that is not there with SYSTEMD_UNAVAILABLE', async () => {
    const err: unknown = await DbusSystemdManager.connect({
      busAddress: 'unix:path=/run/fleet-ts-no-such-bus',
      callTimeoutMs: 2_000,
    }).catch((e: unknown) => e);
    expect(isFleetError(err, 'SYSTEMD_UNAVAILABLE'), String(err)).to.equal(true);
    expect((err as Error).message).to.contain('/run/fleet-ts-no-such-bus');
  });
});

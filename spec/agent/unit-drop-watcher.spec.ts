import { expect } from 'chai';
import { describe, it, beforeEach, afterEach } from 'mocha';
import { appendFile, chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  describeOrigin,
  dropOrigin,
  isLeftoverFileName,
  parseDropOrigin,
  planDropFile,
  planDropRemoval,
} from '../../agent/unit-drop-plan.js';
import { MAX_DROP_FILE_BYTES } from '../../agent/unit-drop-folder.js';
import { UnitDropWatcher, type DropWatcherRegistry } from '../../agent/unit-drop-watcher.js';
import { ManualClock } from '../../lib/clock.js';
import { MemoryLogger, type LogRecord } from '../../lib/logger.js';
import { InMemoryRegistry } from '../../registry/in-memory-registry.js';
import type { UnitRecord } from '../../registry/model.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { unitRecord } from '../helpers/registry-builders.js';
import { unitText } from '../helpers/unit-builders.js';

const MACHINE = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const OTHER_MACHINE = 'ffeeddccbbaa99887766554433221100';
const STABLE_MS = 300;

/** A unit file's text and the hash its unit gets. */
function unitFile(name: string, execStart = '/bin/sleep infinity'): { text: string; hash: string } {
  return { text: unitText([], execStart), hash: unitRecord(name, [], execStart).hash };
}

describe('agent/unit-drop-plan: the ownership rule', () => {
  const origin = dropOrigin(MACHINE, '/etc/fleet/units/web.service');
  const mine: UnitRecord = { ...unitRecord('web.service'), origin };
  const api = unitRecord('web.service', [], '/bin/api');

  it('writes and reads a drop origin', () => {
    expect(origin).to.equal(`drop:${MACHINE}:/etc/fleet/units/web.service`);
    expect(parseDropOrigin(origin)).to.deep.equal({ machine: MACHINE, path: '/etc/fleet/units/web.service' });
    expect(parseDropOrigin('api')).to.equal(undefined);
  });

  it('says where a unit came from', () => {
    expect(describeOrigin(undefined)).to.equal('submitted through the API');
    expect(describeOrigin(origin)).to.equal(`dropped as /etc/fleet/units/web.service on machine ${MACHINE}`);
    expect(describeOrigin('elsewhere')).to.equal('from elsewhere');
  });

  const fileCases: {
    name: string;
    existing: UnitRecord | undefined;
    managed: boolean;
    hash: string;
    kind: string;
  }[] = [
    {
      name: 'creates under a free name',
      existing: undefined,
      managed: false,
      hash: mine.hash,
      kind: 'create',
    },
    { name: 'does nothing when in line', existing: mine, managed: true, hash: mine.hash, kind: 'none' },
    {
      name: 'replaces its own unit after an edit',
      existing: mine,
      managed: false,
      hash: 'new',
      kind: 'replace',
    },
    {
      name: 'refuses a name taken through the API',
      existing: api,
      managed: false,
      hash: mine.hash,
      kind: 'refuse',
    },
    {
      name: 'refuses a name taken by another folder',
      existing: { ...mine, origin: dropOrigin(OTHER_MACHINE, '/etc/fleet/units/web.service') },
      managed: false,
      hash: mine.hash,
      kind: 'refuse',
    },
    {
      name: 'refuses a name taken by another path on the same machine',
      existing: { ...mine, origin: dropOrigin(MACHINE, '/srv/units/web.service') },
      managed: false,
      hash: mine.hash,
      kind: 'refuse',
    },
    {
      name: 'lets go of its unit replaced through the API',
      existing: api,
      managed: true,
      hash: mine.hash,
      kind: 'release',
    },
  ];
  for (const c of fileCases) {
    it(c.name, () => {
      expect(planDropFile({ origin, hash: c.hash, existing: c.existing, managed: c.managed }).kind).to.equal(
        c.kind,
      );
    });
  }

  it('destroys on removal only a unit that is still the file’s', () => {
    expect(planDropRemoval({ origin, existing: mine }).kind).to.equal('destroy');
    expect(planDropRemoval({ origin, existing: api })).to.deep.equal({
      kind: 'forget',
      reason: "the unit is no longer the file's: it is submitted through the API",
    });
    expect(planDropRemoval({ origin, existing: undefined }).kind).to.equal('forget');
  });

  it('tells editor and package-manager leftovers from unit files', () => {
    const leftovers = [
      '.web.service.swp',
      '.#web.service',
      'web.service~',
      '#web.service#',
      'web.service.swp',
      'web.service.tmp',
      'web.service.dpkg-new',
      'web.service.dpkg-old',
      'web.service.rpmnew',
      '4913',
    ];
    for (const name of leftovers) expect(isLeftoverFileName(name), name).to.equal(true);
    for (const name of ['web.service', 'web@.service', 'db.timer', 'README']) {
      expect(isLeftoverFileName(name), name).to.equal(false);
    }
  });
});

/** The in-memory registry, recording every submit the watcher makes. */
class RecordingRegistry implements DropWatcherRegistry {
  readonly submits: { name: string; hash: string; replace: boolean }[] = [];
  constructor(readonly inner: InMemoryRegistry) {}
  submitUnit: DropWatcherRegistry['submitUnit'] = (unit, desired, options) => {
    this.submits.push({ name: unit.name, hash: unit.hash, replace: options?.replace === true });
    return this.inner.submitUnit(unit, desired, options);
  };
  getUnit: DropWatcherRegistry['getUnit'] = (name) => this.inner.getUnit(name);
  listUnits: DropWatcherRegistry['listUnits'] = () => this.inner.listUnits();
  destroyUnit: DropWatcherRegistry['destroyUnit'] = (name) => this.inner.destroyUnit(name);
  watchUnits: DropWatcherRegistry['watchUnits'] = (listener) => this.inner.watchUnits(listener);
}

describe('agent/unit-drop-watcher over a temporary folder and the in-memory registry', function () {
  this.timeout(20_000);
  let root: string;
  let folder: string;
  let registry: InMemoryRegistry;
  let recording: RecordingRegistry;
  let clock: ManualClock;
  let logger: MemoryLogger;
  let watchers: UnitDropWatcher[];
  let watcher: UnitDropWatcher;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'fleet-drop-'));
    folder = join(root, 'units');
    await mkdir(folder);
    registry = new InMemoryRegistry();
    recording = new RecordingRegistry(registry);
    clock = new ManualClock(1_700_000_000_000);
    logger = new MemoryLogger();
    watchers = [];
  });

  afterEach(async () => {
    for (const w of watchers) await w.close();
    await rm(root, { recursive: true, force: true });
  });

  function startWatcher(directory = folder, machineId = MACHINE): UnitDropWatcher {
    const w = new UnitDropWatcher({
      machineId,
      registry: recording,
      clock,
      logger,
      config: { directory, stableMs: STABLE_MS, rescanIntervalMs: 30_000 },
    });
    watchers.push(w);
    w.start();
    watcher = w;
    return w;
  }

  const originOf = (name: string, machineId = MACHINE): string => dropOrigin(machineId, join(folder, name));
  const drop = (name: string, text: string): Promise<void> => writeFile(join(folder, name), text);
  const logged = (level: LogRecord['level'], message: string): LogRecord[] =>
    logger.records.filter((r) => r.level === level && r.message === message);

  /**
   * Lets the manual clock move one stability window per attempt until `check` passes: files
   * settle only when the test moves time, so a file the test is still writing never counts.
   */
  async function until<T>(check: () => T | Promise<T>, description: string): Promise<T> {
    return eventually(
      async () => {
        await clock.advance(STABLE_MS);
        await watcher.idle();
        return check();
      },
      { timeoutMs: 5_000, intervalMs: 20, description },
    );
  }

  /** One full scan now, and time for anything settling to count; for asserting that nothing happens. */
  async function scanTwice(): Promise<void> {
    for (let i = 0; i < 2; i++) {
      watcher.rescan();
      await watcher.idle();
      await clock.advance(STABLE_MS);
      await watcher.idle();
    }
  }

  async function submitted(name: string, hash: string): Promise<void> {
    await until(() => expect(registry.units.get(name)?.hash).to.equal(hash), `${name} at ${hash}`);
  }

  it('submits a dropped file as launched, with the file on this machine as its origin', async () => {
    startWatcher();
    const web = unitFile('web.service');
    await drop('web.service', web.text);
    await submitted('web.service', web.hash);
    const stored = await registry.getUnit('web.service');
    expect(stored?.desiredState).to.equal('launched');
    expect(stored?.unit.origin).to.equal(originOf('web.service'));
    expect(logged('info', 'unit submitted from the drop folder')[0]?.fields).to.include({
      file: join(folder, 'web.service'),
      unit: 'web.service',
      desiredState: 'launched',
    });
  });

  it('replaces the unit when its file is edited, launched again', async () => {
    startWatcher();
    const first = unitFile('web.service');
    await drop('web.service', first.text);
    await submitted('web.service', first.hash);
    await registry.setDesiredState('web.service', 'loaded');
    const second = unitFile('web.service', '/bin/sleep 1000');
    await drop('web.service', second.text);
    await submitted('web.service', second.hash);
    expect((await registry.getUnit('web.service'))?.desiredState).to.equal('launched');
    expect(recording.submits.at(-1)).to.deep.equal({ name: 'web.service', hash: second.hash, replace: true });
    expect(logged('info', 'unit replaced from the drop folder')[0]?.fields).to.include({
      previousHash: first.hash,
    });
  });

  it('destroys the unit when its file is removed', async () => {
    startWatcher();
    const web = unitFile('web.service');
    await drop('web.service', web.text);
    await submitted('web.service', web.hash);
    await rm(join(folder, 'web.service'));
    await until(async () => expect(await registry.getUnit('web.service')).to.equal(undefined), 'the destroy');
    expect(logged('info', 'unit destroyed: its file was removed from the drop folder')).to.have.length(1);
  });

  it('submits the file again when its unit is destroyed through the API (the file is the truth)', async () => {
    startWatcher();
    const web = unitFile('web.service');
    await drop('web.service', web.text);
    await submitted('web.service', web.hash);
    await registry.destroyUnit('web.service');
    watcher.rescan();
    await submitted('web.service', web.hash);
    expect(logged('info', 'unit submitted from the drop folder')).to.have.length(2);
  });

  it('does not destroy a unit whose file is replaced by rename (an editor saving)', async () => {
    startWatcher();
    const web = unitFile('web.service');
    await drop('web.service', web.text);
    await submitted('web.service', web.hash);
    await rm(join(folder, 'web.service'));
    watcher.rescan();
    await watcher.idle();
    await drop('web.service', web.text);
    await scanTwice();
    expect(registry.units.get('web.service')?.hash).to.equal(web.hash);
    expect(logged('info', 'unit destroyed: its file was removed from the drop folder')).to.deep.equal([]);
  });

  it('submits nothing of an invalid file, logs each problem with file and line once, and submits its siblings', async () => {
    startWatcher();
    const good = unitFile('good.service');
    await drop('bad.service', '[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineOf=\nGlobal=maybe\n');
    await drop('good.service', good.text);
    await submitted('good.service', good.hash);
    await until(
      () =>
        expect(logged('error', 'invalid unit file in the drop folder; nothing submitted')).to.have.length(2),
      'the problems of bad.service',
    );
    await scanTwice();
    const problems = logged('error', 'invalid unit file in the drop folder; nothing submitted');
    expect(problems.map((r) => r.fields.problem)).to.deep.equal([
      `${join(folder, 'bad.service')} line 4: [X-Fleet] MachineOf: needs a unit name, got ""`,
      `${join(folder, 'bad.service')} line 5: [X-Fleet] Global: expected a boolean (yes/no, true/false, on/off, 1/0), got "maybe"`,
    ]);
    expect(await registry.getUnit('bad.service')).to.equal(undefined);
    expect(recording.submits.map((s) => s.name)).to.deep.equal(['good.service']);
  });

  it('leaves the unit as it was when an edit makes its file invalid', async () => {
    startWatcher();
    const web = unitFile('web.service');
    await drop('web.service', web.text);
    await submitted('web.service', web.hash);
    await drop('web.service', '[Service\nExecStart=/bin/true\n');
    await until(
      () =>
        expect(logged('error', 'invalid unit file in the drop folder; nothing submitted')).to.have.length(1),
      'the problem',
    );
    expect(registry.units.get('web.service')?.hash).to.equal(web.hash);
  });

  it('never submits a half-written file', async () => {
    startWatcher();
    const full = unitFile('web.service');
    const half = full.text.slice(0, full.text.length - 6);
    await drop('web.service', half);
    // The watcher has read the half (a valid unit of its own) ...
    await eventually(
      () =>
        expect(
          logger.records.some(
            (r) =>
              r.message === 'unit file changed; waiting for it to settle' && r.fields.bytes === half.length,
          ),
        ).to.equal(true),
      { description: 'the half to be read' },
    );
    // ... and the rest comes within the stability window (the clock has not moved).
    await appendFile(join(folder, 'web.service'), full.text.slice(half.length));
    await submitted('web.service', full.hash);
    expect(recording.submits).to.deep.equal([{ name: 'web.service', hash: full.hash, replace: false }]);
  });

  it('ignores editor leftovers and files whose names are not unit names', async () => {
    startWatcher();
    const text = unitFile('web.service').text;
    for (const name of [
      '.web.service.swp',
      'web.service~',
      '#web.service#',
      'web.service.tmp',
      '4913',
      'README',
    ]) {
      await drop(name, text);
    }
    await mkdir(join(folder, 'sub.service'));
    const real = unitFile('real.service');
    await drop('real.service', real.text);
    await submitted('real.service', real.hash);
    await scanTwice();
    expect((await registry.listUnits()).map((s) => s.unit.name)).to.deep.equal(['real.service']);
    const ignored = logged('info', 'file in the unit drop folder ignored: its name is not a unit name');
    expect(ignored.map((r) => r.fields.file)).to.deep.equal([join(folder, 'README')]);
    expect(logged('info', 'entry in the unit drop folder ignored: not a regular file')).to.have.length(1);
  });

  it('does not read a file over 1 MiB and says so once', async () => {
    startWatcher();
    await drop('big.service', `${unitText([])}#${'x'.repeat(MAX_DROP_FILE_BYTES)}\n`);
    const message = 'unit file too large to be a unit; its unit is left as it is';
    await until(() => expect(logged('error', message)).to.have.length(1), 'the big file to be refused');
    await scanTwice();
    expect(logged('error', message)).to.have.length(1);
    expect(recording.submits).to.deep.equal([]);
  });

  it('refuses a symbolic link without following it: nothing of its target is read or logged', async () => {
    startWatcher();
    const secret = join(root, 'root-only.conf');
    await writeFile(secret, 'password=hunter2\n', { mode: 0o600 });
    await symlink(secret, join(folder, 'leak.service'));
    const web = unitFile('web.service');
    await drop('web.service', web.text);
    await submitted('web.service', web.hash);
    const refused = 'file in the unit drop folder refused; its unit is left as it is';
    await until(() => expect(logged('error', refused)).to.have.length(1), 'the link to be refused');
    expect(logged('error', refused)[0]?.fields).to.include({
      file: join(folder, 'leak.service'),
      why: 'a symbolic link (not followed)',
    });
    await scanTwice();
    expect(logged('error', refused)).to.have.length(1);
    expect(JSON.stringify(logger.records)).to.not.contain('hunter2');
    expect(registry.units.has('leak.service')).to.equal(false);
  });

  it('refuses files writable by group or others, as sshd StrictModes', async () => {
    startWatcher();
    for (const [name, mode] of [
      ['group.service', 0o664],
      ['world.service', 0o646],
    ] as const) {
      await drop(name, unitFile(name).text);
      await chmod(join(folder, name), mode);
    }
    const refused = 'file in the unit drop folder refused; its unit is left as it is';
    await until(() => expect(logged('error', refused)).to.have.length(2), 'both files to be refused');
    expect(logged('error', refused).map((r) => r.fields.why)).to.have.members([
      "writable by its group (mode 664); refusing it as sshd's StrictModes would",
      "writable by others (mode 646); refusing it as sshd's StrictModes would",
    ]);
    await scanTwice();
    expect(recording.submits).to.deep.equal([]);
    // Once fixed, the file counts.
    await chmod(join(folder, 'group.service'), 0o644);
    await submitted('group.service', unitFile('group.service').hash);
  });

  it('refuses a folder writable by group or others and submits nothing from it', async () => {
    await chmod(folder, 0o777);
    startWatcher();
    await drop('web.service', unitFile('web.service').text);
    const message = 'cannot read the unit drop folder; its units are left as they are';
    await until(() => expect(logged('error', message)).to.have.length(1), 'the folder to be refused');
    expect(String(logged('error', message)[0]?.fields.error)).to.contain('writable by its group (mode 777)');
    await scanTwice();
    expect(recording.submits).to.deep.equal([]);
  });

  it('submits a template without launching it', async () => {
    startWatcher();
    const template = unitFile('app@.service');
    await drop('app@.service', template.text);
    await submitted('app@.service', template.hash);
    expect((await registry.getUnit('app@.service'))?.desiredState).to.equal('inactive');
  });

  it('leaves a unit submitted through the API alone, logs an error once, and submits the file once that unit is destroyed', async () => {
    const api = unitRecord('web.service', [], '/bin/api');
    await registry.submitUnit(api, 'launched');
    startWatcher();
    const web = unitFile('web.service');
    await drop('web.service', web.text);
    const message = 'unit file not submitted: a unit of that name came from elsewhere';
    await until(() => expect(logged('error', message)).to.have.length(1), 'the conflict to be logged');
    await scanTwice();
    expect(logged('error', message)).to.have.length(1);
    expect(logged('error', message)[0]?.fields).to.include({
      file: join(folder, 'web.service'),
      unit: 'web.service',
      existing: 'submitted through the API',
    });
    expect(await registry.getUnit('web.service')).to.deep.equal({ unit: api, desiredState: 'launched' });
    expect(recording.submits).to.deep.equal([]);

    await registry.destroyUnit('web.service');
    await submitted('web.service', web.hash);
    expect((await registry.getUnit('web.service'))?.unit.origin).to.equal(originOf('web.service'));
  });

  it("names another machine's folder as the origin of a unit it leaves alone", async () => {
    const theirs = {
      ...unitRecord('web.service', [], '/bin/theirs'),
      origin: originOf('web.service', OTHER_MACHINE),
    };
    await registry.submitUnit(theirs, 'launched');
    startWatcher();
    await drop('web.service', unitFile('web.service').text);
    const message = 'unit file not submitted: a unit of that name came from elsewhere';
    await until(() => expect(logged('error', message)).to.have.length(1), 'the conflict to be logged');
    expect(logged('error', message)[0]?.fields.existing).to.equal(
      `dropped as ${join(folder, 'web.service')} on machine ${OTHER_MACHINE}`,
    );
    expect(registry.units.get('web.service')).to.deep.equal(theirs);
  });

  it('no longer manages a unit replaced through the API: edits are refused, removal destroys nothing', async () => {
    startWatcher();
    const web = unitFile('web.service');
    await drop('web.service', web.text);
    await submitted('web.service', web.hash);
    const api = unitRecord('web.service', [], '/bin/api');
    await registry.submitUnit(api, 'launched', { replace: true });
    watcher.rescan();
    await until(
      () =>
        expect(
          logged('warn', 'unit taken over elsewhere; the drop folder no longer manages it'),
        ).to.have.length(1),
      'the takeover to be logged',
    );

    await drop('web.service', unitFile('web.service', '/bin/sleep 1000').text);
    await until(
      () =>
        expect(
          logged('error', 'unit file not submitted: a unit of that name came from elsewhere'),
        ).to.have.length(1),
      'the edit to be refused',
    );
    await rm(join(folder, 'web.service'));
    await scanTwice();
    expect(await registry.getUnit('web.service')).to.deep.equal({ unit: api, desiredState: 'launched' });
    expect(recording.submits).to.have.length(1);
  });

  it('does not destroy a unit taken over before its file was removed', async () => {
    startWatcher();
    const web = unitFile('web.service');
    await drop('web.service', web.text);
    await submitted('web.service', web.hash);
    const api = unitRecord('web.service', [], '/bin/api');
    await registry.submitUnit(api, 'launched', { replace: true });
    await rm(join(folder, 'web.service'));
    await until(
      () => expect(logged('info', 'unit file removed; the unit is left alone')).to.have.length(1),
      'the removal to be looked at',
    );
    expect(await registry.getUnit('web.service')).to.deep.equal({ unit: api, desiredState: 'launched' });
  });

  it('after a restart, destroys the unit of a file removed meanwhile and replaces one edited meanwhile', async () => {
    const first = startWatcher();
    const gone = unitFile('gone.service');
    const edited = unitFile('edited.service');
    await drop('gone.service', gone.text);
    await drop('edited.service', edited.text);
    await submitted('gone.service', gone.hash);
    await submitted('edited.service', edited.hash);
    await first.close();

    await rm(join(folder, 'gone.service'));
    const next = unitFile('edited.service', '/bin/sleep 1000');
    await drop('edited.service', next.text);
    startWatcher();
    await until(
      async () => expect(await registry.getUnit('gone.service')).to.equal(undefined),
      'the destroy',
    );
    await submitted('edited.service', next.hash);
  });

  it('retries registry failures', async () => {
    registry.failNext(3);
    startWatcher();
    const web = unitFile('web.service');
    await drop('web.service', web.text);
    await submitted('web.service', web.hash);
  });

  it('waits for a missing folder to appear', async () => {
    folder = join(root, 'later');
    startWatcher(folder);
    await until(
      () =>
        expect(logged('info', 'unit drop folder does not exist; watching for it to appear')).to.have.length(
          1,
        ),
      'the missing folder to be noticed',
    );
    await mkdir(folder);
    const web = unitFile('web.service');
    await drop('web.service', web.text);
    await submitted('web.service', web.hash);
  });
});

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { afterEach, before, describe, it } from 'mocha';
import type { Etcd3, IOptions } from 'etcd3';
import { FleetError } from '../../lib/errors.js';
import {
  findFreePort,
  startEtcd,
  startEtcdCluster,
  useEtcd,
  type EtcdCluster,
  type EtcdInstance,
} from '../../systemd-fixtures/etcd/etcd-harness.js';
import { eventually } from '../../systemd-fixtures/eventually.js';

/** Stops whatever a test started, also when the test failed half-way. */
function tracker(): { add<T extends EtcdInstance | EtcdCluster>(started: T): T } {
  const started: (EtcdInstance | EtcdCluster)[] = [];
  afterEach(async function () {
    this.timeout(30_000);
    await Promise.all(started.splice(0).map((s) => s.stop()));
  });
  return {
    add(s) {
      started.push(s);
      return s;
    },
  };
}

/** Gives every etcd3 call a deadline of `ms`, so a call to a dead or frozen member fails fast. */
function deadlineOf(ms: number): Partial<IOptions> {
  return { defaultCallOptions: () => ({ deadline: new Date(Date.now() + ms) }) };
}

const quickCalls = deadlineOf(2_000);

/** True when `pid` names no process any more (a zombie waiting for its reaper counts as gone). */
function processGone(pid: number): boolean {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    // No /proc entry: the process is gone.
    return true;
  }
  return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
}

function tempFoldersNamed(name: string): string[] {
  return fs.readdirSync(os.tmpdir()).filter((entry) => entry.startsWith(`fleet-etcd-${name}-`));
}

async function roundTrip(client: Etcd3, key: string, value: string): Promise<string | null> {
  await client.put(key).value(value);
  return client.get(key).string();
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, got a result');
}

describe('etcd harness', function () {
  this.timeout(30_000);

  describe('startEtcd', function () {
    const instances = tracker();

    it('starts etcd on a free loopback port and serves a put and a get through etcd3', async function () {
      const etcd = instances.add(await startEtcd());
      expect(etcd.clientUrl).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(etcd.endpoints).to.deep.equal([etcd.clientUrl]);
      expect(etcd.running).to.be.true;
      expect(await roundTrip(etcd.client(), 'greeting', 'hello')).to.equal('hello');
    });

    it('ends the process and removes the data dir on stop, and stopping twice is harmless', async function () {
      const etcd = instances.add(await startEtcd());
      const { pid, dataDir, logFile } = etcd;
      expect(fs.existsSync(dataDir)).to.be.true;
      expect(fs.existsSync(logFile)).to.be.true;

      await etcd.stop();
      await etcd.stop();

      expect(processGone(pid)).to.be.true;
      expect(etcd.running).to.be.false;
      expect(fs.existsSync(dataDir)).to.be.false;
      expect(fs.existsSync(path.dirname(logFile))).to.be.false;
      expect(() => etcd.client()).to.throw(FleetError, /stopped/);
    });

    it('keeps the data across a kill and a restart on the same port', async function () {
      const etcd = instances.add(await startEtcd());
      await etcd.client().put('survivor').value('still here');
      const { pid, clientUrl } = etcd;

      await etcd.kill();
      expect(processGone(pid)).to.be.true;
      expect(fs.existsSync(etcd.dataDir)).to.be.true;

      await etcd.restart();
      expect(etcd.pid).to.not.equal(pid);
      expect(etcd.clientUrl).to.equal(clientUrl);
      expect(await etcd.client().get('survivor').string()).to.equal('still here');
    });

    it('runs two instances side by side on different ports with separate data', async function () {
      const [first, second] = await Promise.all([startEtcd({ name: 'left' }), startEtcd({ name: 'right' })]);
      instances.add(first);
      instances.add(second);
      expect(first.clientUrl).to.not.equal(second.clientUrl);
      expect(first.dataDir).to.not.equal(second.dataDir);

      await first.client().put('side').value('left');
      await second.client().put('side').value('right');
      expect(await first.client().get('side').string()).to.equal('left');
      expect(await second.client().get('side').string()).to.equal('right');
    });

    it('also serves clients on extra listen hosts', async function () {
      // All of 127.0.0.0/8 reaches loopback on Linux, so 127.0.0.2 stands in for a lab bridge address.
      const etcd = instances.add(await startEtcd({ listenHosts: ['127.0.0.2'] }));
      const port = new URL(etcd.clientUrl).port;
      expect(etcd.endpoints).to.deep.equal([etcd.clientUrl, `http://127.0.0.2:${port}`]);
      expect(await roundTrip(etcd.client({ hosts: etcd.endpoints[1]! }), 'via', 'bridge')).to.equal('bridge');
    });

    it('retries with new ports when a port is taken before etcd binds it', async function () {
      const squatter = net.createServer((socket) => socket.destroy());
      await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
      const address = squatter.address();
      const busyPort = typeof address === 'object' && address !== null ? address.port : 0;
      let handedOutBusy = false;
      const freePort = (): Promise<number> => {
        if (handedOutBusy) return findFreePort();
        handedOutBusy = true;
        return Promise.resolve(busyPort);
      };
      try {
        const etcd = instances.add(await startEtcd({ name: 'retry', freePort }));
        expect(handedOutBusy).to.be.true;
        expect(etcd.clientUrl).to.not.equal(`http://127.0.0.1:${busyPort}`);
        expect(await roundTrip(etcd.client(), 'retried', 'yes')).to.equal('yes');
      } finally {
        await new Promise((resolve) => squatter.close(resolve));
      }
    });

    it("reports etcd's last log lines when etcd cannot start, and leaves no temp folder", async function () {
      // 192.0.2.1 (TEST-NET-1) is not an address of this host, so etcd cannot listen on it.
      const error = await rejection(startEtcd({ name: 'unstartable', listenHosts: ['192.0.2.1'] }));
      expect(error).to.be.instanceOf(FleetError);
      expect((error as FleetError).code).to.equal('HARNESS_START_FAILED');
      expect((error as FleetError).message).to.match(/exited with code \d+ before it became healthy/);
      expect((error as FleetError).message).to.include('cannot assign requested address');
      expect(tempFoldersNamed('unstartable')).to.deep.equal([]);
    });

    it('freezes etcd on pause and thaws it on resume', async function () {
      const etcd = instances.add(await startEtcd());
      await etcd.client().put('frozen').value('no');

      etcd.pause();
      const error = await rejection(etcd.client(deadlineOf(200)).get('frozen').string());
      expect(error).to.be.instanceOf(Error);

      etcd.resume();
      await eventually(
        async () => expect(await etcd.client(quickCalls).get('frozen').string()).to.equal('no'),
        {
          timeoutMs: 10_000,
          description: 'the resumed etcd to answer',
        },
      );
    });

    const missing = [
      { name: 'a name not on PATH', binary: 'etcd-not-installed-anywhere' },
      { name: 'a path that does not exist', binary: '/nonexistent/bin/etcd' },
    ];
    for (const { name, binary } of missing) {
      it(`fails loudly with HARNESS_MISSING_BINARY and the install hint for ${name}`, async function () {
        const error = await rejection(startEtcd({ binary }));
        expect(error).to.be.instanceOf(FleetError);
        expect((error as FleetError).code).to.equal('HARNESS_MISSING_BINARY');
        expect((error as FleetError).message)
          .to.include(binary)
          .and.to.include('apt-get install etcd-server');
      });
    }
  });

  describe('startEtcdCluster', function () {
    const clusters = tracker();

    it('keeps serving reads and writes with the leader killed, and the member rejoins on restart', async function () {
      const cluster = clusters.add(await startEtcdCluster(3, { name: 'trio' }));
      expect(cluster.members.map((m) => m.name)).to.deep.equal(['trio-0', 'trio-1', 'trio-2']);
      expect(new Set(cluster.endpoints).size).to.equal(3);
      const client = cluster.client(quickCalls);
      await client.put('before').value('1');

      const leader = await eventually(async () => {
        const found = await cluster.leader();
        expect(found, 'a leader').to.not.equal(undefined);
        return found!;
      });
      await leader.kill();
      expect(leader.running).to.be.false;

      await eventually(
        async () => {
          await client.put('after').value('2');
          expect(await client.get('before').string()).to.equal('1');
          expect(await client.get('after').string()).to.equal('2');
        },
        { timeoutMs: 15_000, description: 'the two survivors to serve reads and writes' },
      );
      const successor = await cluster.leader();
      expect(successor).to.not.equal(undefined).and.to.not.equal(leader);

      await leader.restart();
      const rejoined = leader.client(quickCalls);
      await eventually(async () => expect(await rejoined.get('after').string()).to.equal('2'), {
        timeoutMs: 10_000,
        description: 'the restarted member to catch up',
      });
    });
  });

  describe('useEtcd', function () {
    const etcd = useEtcd({ name: 'suite' });
    const atDefinitionTime = rejection(Promise.resolve().then(() => etcd.current));
    let firstPid = 0;

    before(function () {
      firstPid = etcd.current.pid;
    });

    it('provides a running etcd to the tests of the suite', async function () {
      expect(etcd.current.running).to.be.true;
      expect(await roundTrip(etcd.current.client(), 'suite', 'shared')).to.equal('shared');
    });

    it('keeps the same etcd, and its data, across the tests of the suite', async function () {
      expect(etcd.current.pid).to.equal(firstPid);
      expect(await etcd.current.client().get('suite').string()).to.equal('shared');
    });

    it('refuses access before the suite has started its etcd', async function () {
      const error = await atDefinitionTime;
      expect(error).to.be.instanceOf(FleetError);
      expect((error as FleetError).message).to.match(/no etcd here/);
    });
  });

  describe('cleanup when the process ends', function () {
    const harnessUrl = new URL('../../systemd-fixtures/etcd/etcd-harness.js', import.meta.url).href;

    /** Runs a node child that starts etcd and then does `then`; resolves with what it printed and how it ended. */
    function childStartingEtcd(then: 'forget it' | 'wait for a signal', name: string) {
      const script = [
        `import { startEtcd } from ${JSON.stringify(harnessUrl)};`,
        `const etcd = await startEtcd({ name: ${JSON.stringify(name)} });`,
        'console.log(JSON.stringify({ pid: etcd.pid, dataDir: etcd.dataDir }));',
        then === 'wait for a signal' ? 'setInterval(() => undefined, 1000);' : '',
      ].join('\n');
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let output = '';
      const started = new Promise<{ pid: number; dataDir: string }>((resolve, reject) => {
        child.stdout.setEncoding('utf8');
        child.stdout.on('data', (chunk: string) => {
          output += chunk;
          if (output.includes('\n')) resolve(JSON.parse(output) as { pid: number; dataDir: string });
        });
        child.once('exit', () => {
          reject(new Error(`child exited before printing, output: ${output}`));
        });
      });
      const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.once('exit', (code, signal) => {
          resolve({ code, signal });
        });
      });
      return { child, started, ended };
    }

    it('kills and removes an instance that was never stopped when the process exits', async function () {
      const { started, ended } = childStartingEtcd('forget it', 'forgotten');
      const { pid, dataDir } = await started;
      expect(await ended).to.deep.equal({ code: 0, signal: null });
      await eventually(() => expect(processGone(pid), `etcd ${pid} gone`).to.be.true);
      expect(fs.existsSync(dataDir)).to.be.false;
      expect(tempFoldersNamed('forgotten')).to.deep.equal([]);
    });

    it('kills and removes running instances when the process gets SIGTERM', async function () {
      const { child, started, ended } = childStartingEtcd('wait for a signal', 'terminated');
      const { pid, dataDir } = await started;
      child.kill('SIGTERM');
      expect(await ended).to.deep.equal({ code: null, signal: 'SIGTERM' });
      await eventually(() => expect(processGone(pid), `etcd ${pid} gone`).to.be.true);
      expect(fs.existsSync(dataDir)).to.be.false;
      expect(tempFoldersNamed('terminated')).to.deep.equal([]);
    });
  });
});

import { spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '../../lib/logger.js';
import { ApiServer } from '../../fleetd/api/server.js';
import { createTestPki } from '../helpers/test-pki.js';
import { expect } from 'chai';
import { describe, it, beforeEach, afterEach } from 'mocha';
import { VERSION } from '../../lib/version.js';
import { FLEETCTL_MAIN, installFakeSsh } from './fake-ssh.js';
import { Autopilot, Harness, M1, type RunResult } from './harness.js';

/** Runs the built fleetctl as a child process. */
function fleetctl(args: readonly string[], env: Record<string, string>, cwd: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FLEETCTL_MAIN, ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: cwd, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.once('error', reject);
    child.once('close', (code) => {
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      });
    });
  });
}

const MACHINES = 'MACHINE\t\tIP\t\tMETADATA\na1b2c3d4...\t10.0.0.1\t-\n';

describe('the built fleetctl binary', () => {
  let h: Harness;
  let env: Record<string, string>;

  beforeEach(async () => {
    h = await Harness.start();
    await h.machine(M1, '10.0.0.1');
    env = { FLEETCTL_ENDPOINT: h.endpoint };
  });

  afterEach(async () => {
    await h.close();
  });

  it('prints its version and exits 0', async () => {
    expect(await fleetctl(['--version'], env, h.dir)).to.deep.equal({
      code: 0,
      stdout: `fleetctl version ${VERSION}\n`,
      stderr: '',
    });
  });

  it('exits 1 on an unknown flag', async () => {
    const r = await fleetctl(['list-units', '--bogus'], env, h.dir);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal("Error: unknown option '--bogus'\nRun 'fleetctl help list-units' for usage.\n");
  });

  it('lists machines from the API over the unix socket', async () => {
    expect(await fleetctl(['list-machines'], env, h.dir)).to.deep.equal({
      code: 0,
      stdout: MACHINES,
      stderr: '',
    });
  });

  it("starts a unit from a file with fleet's own blocking cadence", async () => {
    await h.file('hello.service', '[Service]\nExecStart=/bin/sleep 100\n');
    const pilot = await new Autopilot(h, M1).start();
    try {
      expect(await fleetctl(['start', 'hello.service'], env, h.dir)).to.deep.equal({
        code: 0,
        stdout: 'Unit hello.service inactive\nUnit hello.service launched on a1b2c3d4.../10.0.0.1\n',
        stderr: '',
      });
    } finally {
      await pilot.stop();
    }
  });

  it('talks HTTPS to https://<IP> without a TLS ServerName deprecation warning', async () => {
    const pkiDir = join(h.dir, 'pki');
    await mkdir(pkiDir);
    const pki = await createTestPki(pkiDir);
    const server = new ApiServer({ registry: h.registry, logger: silentLogger });
    const { port } = await server.listenTcp({
      host: '127.0.0.1',
      port: 0,
      tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert },
    });
    try {
      const r = await fleetctl(
        [
          '--endpoint',
          `https://127.0.0.1:${port}`,
          '--ca-file',
          join(pkiDir, 'ca.crt'),
          '--cert-file',
          join(pkiDir, 'client.crt'),
          '--key-file',
          join(pkiDir, 'client.key'),
          'list-machines',
        ],
        {},
        h.dir,
      );
      expect(r).to.deep.equal({ code: 0, stdout: MACHINES, stderr: '' });
    } finally {
      await server.close();
    }
  });

  it('reaches the API through --tunnel, with fleetctl fd-forward on the tunnel host', async () => {
    const fake = await installFakeSsh(h.dir);
    const r = await fleetctl(['--tunnel', 'bastion', 'list-machines'], { ...env, ...fake.env }, h.dir);
    expect(r).to.deep.equal({ code: 0, stdout: MACHINES, stderr: '' });
    const calls = (await readFile(fake.log, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as string[]);
    expect(calls[0]?.slice(-5)).to.deep.equal(['--', 'bastion', 'fleetctl', 'fd-forward', h.socket]);
    expect(calls[0]?.slice(-7, -5)).to.deep.equal(['-p', '22']);
  });

  it('runs status through the system ssh client (via the tunnel) and exits with its status', async () => {
    const fake = await installFakeSsh(h.dir);
    await h.unit('hello.service', 'launched');
    await h.place('hello.service', M1);
    await h.report('hello.service', M1);
    const r = await fleetctl(
      ['--tunnel', 'bastion:2022', 'status', '--ssh', 'hello.service'],
      { ...env, ...fake.env },
      h.dir,
    );
    expect(r).to.deep.equal({
      code: 3,
      stdout: 'fake systemctl on remote: status -l hello.service\n',
      stderr: '',
    });
    const calls = (await readFile(fake.log, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as string[]);
    const status = calls.find((c) => c.includes('systemctl'));
    expect(status?.slice(-10)).to.deep.equal([
      '-p',
      '22',
      '-J',
      'core@bastion:2022',
      '--',
      '10.0.0.1',
      'systemctl',
      'status',
      '-l',
      'hello.service',
    ]);
  });
});

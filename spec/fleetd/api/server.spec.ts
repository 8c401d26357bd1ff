import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { lstat, readFile, stat, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { expect } from 'chai';
import { after, afterEach, before, describe, it } from 'mocha';
import { isFleetError } from '../../../lib/errors.js';
import { MemoryLogger, silentLogger } from '../../../lib/logger.js';
import { ApiServer, type ApiServerOptions } from '../../../fleetd/api/server.js';
import { InMemoryRegistry } from '../../../registry/in-memory-registry.js';
import type { StoredUnit } from '../../../registry/model.js';
import { eventually } from '../../../systemd-fixtures/eventually.js';
import { httpRequest, type HttpTarget } from '../../helpers/http.js';
import { createTestPki, type TestPki } from '../../helpers/test-pki.js';
import { tempDir } from './api-harness.js';

/** A registry whose unit listing waits until the test opens the gate: a request held in flight. */
class GatedRegistry extends InMemoryRegistry {
  private release: (() => void) | undefined;
  private readonly gate = new Promise<void>((resolve) => {
    this.release = resolve;
  });
  entered = false;

  override async listUnits(): Promise<StoredUnit[]> {
    this.entered = true;
    await this.gate;
    return super.listUnits();
  }

  open(): void {
    this.release?.();
  }
}

async function failure(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

describe('fleetd/api server', () => {
  let dir: { dir: string; cleanup(): Promise<void> };
  let pki: TestPki;
  let names = 0;
  const servers: ApiServer[] = [];
  const children: ChildProcess[] = [];

  before(async function () {
    this.timeout(20_000);
    dir = await tempDir('fleet-api-server-');
    pki = await createTestPki(dir.dir);
  });

  after(async () => {
    await dir.cleanup();
  });

  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  function socketPath(): string {
    return path.join(dir.dir, `s-${++names}.sock`);
  }

  function server(options: Partial<ApiServerOptions> = {}): ApiServer {
    const s = new ApiServer({ registry: new InMemoryRegistry(), logger: silentLogger, ...options });
    servers.push(s);
    return s;
  }

  /** Leaves a socket file nobody serves: a process binds it and is SIGKILLed. */
  async function staleSocket(file: string): Promise<void> {
    const child = spawn(
      process.execPath,
      ['-e', "require('net').createServer().listen(process.argv[1], () => console.log('ready'))", file],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(child);
    await once(child.stdout, 'data');
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect((await lstat(file)).isSocket()).to.equal(true);
  }

  describe('constructor', () => {
    for (const tokenLimit of [0, -1, 1.5, 65536]) {
      it(`refuses token limit ${tokenLimit} with CONFIG_INVALID`, () => {
        expect(() => new ApiServer({ registry: new InMemoryRegistry(), logger: silentLogger, tokenLimit }))
          .to.throw()
          .that.satisfies((e: unknown) => isFleetError(e, 'CONFIG_INVALID'));
      });
    }

    it('refuses a body limit of 0 with CONFIG_INVALID', () => {
      expect(() => new ApiServer({ registry: new InMemoryRegistry(), logger: silentLogger, maxBodyBytes: 0 }))
        .to.throw()
        .that.satisfies((e: unknown) => isFleetError(e, 'CONFIG_INVALID'));
    });
  });

  describe('unix socket', () => {
    it('creates the socket with mode 0660 by default', async () => {
      const file = socketPath();
      await server().listenUnix(file);
      expect((await stat(file)).mode & 0o777).to.equal(0o660);
      expect((await httpRequest({ kind: 'unix', socketPath: file }, 'GET', '/fleet/v1/units')).body).to.equal(
        '{}',
      );
    });

    it('creates the socket with the mode given', async () => {
      const file = socketPath();
      await server().listenUnix(file, 0o600);
      expect((await stat(file)).mode & 0o777).to.equal(0o600);
    });

    it('removes a stale socket file that nobody answers on', async () => {
      const file = socketPath();
      await staleSocket(file);
      await server().listenUnix(file);
      expect(
        (await httpRequest({ kind: 'unix', socketPath: file }, 'GET', '/fleet/v1/units')).status,
      ).to.equal(200);
    });

    it('refuses a socket a live process serves, and leaves it', async () => {
      const file = socketPath();
      const other = net.createServer();
      other.listen(file);
      await once(other, 'listening');
      try {
        const err = await failure(() => server().listenUnix(file));
        expect(isFleetError(err, 'API_LISTEN_FAILED'), String(err)).to.equal(true);
        expect((err as Error).message).to.contain('another process is serving on it');
        expect((await lstat(file)).isSocket()).to.equal(true);
      } finally {
        other.close();
      }
    });

    it('refuses a path that is not a socket, and leaves it', async () => {
      const file = path.join(dir.dir, `plain-${++names}.txt`);
      await writeFile(file, 'keep me');
      const err = await failure(() => server().listenUnix(file));
      expect(isFleetError(err, 'API_LISTEN_FAILED')).to.equal(true);
      expect((err as Error).message).to.contain('is not a socket');
      expect((await lstat(file)).isFile()).to.equal(true);
    });

    it('fails with API_LISTEN_FAILED when the folder does not exist', async () => {
      const err = await failure(() => server().listenUnix(path.join(dir.dir, 'missing', 'api.sock')));
      expect(isFleetError(err, 'API_LISTEN_FAILED')).to.equal(true);
    });

    it('removes its socket file on close, and close is idempotent', async () => {
      const file = socketPath();
      const s = server();
      await s.listenUnix(file);
      await s.close();
      await s.close();
      const err = await failure(() => lstat(file));
      expect((err as NodeJS.ErrnoException).code).to.equal('ENOENT');
    });

    it('refuses to listen after close', async () => {
      const s = server();
      await s.close();
      const err = await failure(() => s.listenUnix(socketPath()));
      expect(isFleetError(err, 'API_LISTEN_FAILED')).to.equal(true);
    });
  });

  describe('TCP', () => {
    it('serves plain HTTP on a loopback address when allowed', async () => {
      const { port } = await server().listenTcp({
        host: '127.0.0.1',
        port: 0,
        allowPlainHttpOnLoopback: true,
      });
      expect(port).to.be.greaterThan(0);
      const res = await httpRequest({ kind: 'tcp', host: '127.0.0.1', port }, 'GET', '/fleet/v1/units');
      expect(res.status).to.equal(200);
    });

    it('warns at start-up that plain HTTP gives every local user full control', async () => {
      const logger = new MemoryLogger();
      const { port } = await server({ logger }).listenTcp({
        host: '127.0.0.1',
        port: 0,
        allowPlainHttpOnLoopback: true,
      });
      const warnings = logger.records.filter((r) => r.level === 'warn');
      expect(warnings.map((r) => r.message)).to.deep.equal([
        'API served over plain HTTP without authentication: every local user and every container in this network namespace can reach it',
      ]);
      expect(warnings[0]?.fields).to.include({ host: '127.0.0.1', port });
    });

    it('accepts localhost as loopback', async () => {
      const { port } = await server().listenTcp({
        host: 'localhost',
        port: 0,
        allowPlainHttpOnLoopback: true,
      });
      expect(port).to.be.greaterThan(0);
    });

    it('refuses plain HTTP without the flag, with CONFIG_INVALID', async () => {
      const err = await failure(() => server().listenTcp({ host: '127.0.0.1', port: 0 }));
      expect(isFleetError(err, 'CONFIG_INVALID')).to.equal(true);
      expect((err as Error).message).to.contain('without TLS');
    });

    for (const host of ['0.0.0.0', '::', '10.1.2.3']) {
      it(`refuses plain HTTP on non-loopback ${host} even with the flag`, async () => {
        const err = await failure(() =>
          server().listenTcp({ host, port: 0, allowPlainHttpOnLoopback: true }),
        );
        expect(isFleetError(err, 'CONFIG_INVALID')).to.equal(true);
        expect((err as Error).message).to.contain('is not a loopback address');
      });
    }

    it('fails with API_LISTEN_FAILED when the port is taken', async () => {
      const { port } = await server().listenTcp({
        host: '127.0.0.1',
        port: 0,
        allowPlainHttpOnLoopback: true,
      });
      const err = await failure(() =>
        server().listenTcp({ host: '127.0.0.1', port, allowPlainHttpOnLoopback: true }),
      );
      expect(isFleetError(err, 'API_LISTEN_FAILED')).to.equal(true);
    });
  });

  describe('TLS', () => {
    async function tlsServer(): Promise<number> {
      const { port } = await server().listenTcp({
        host: '127.0.0.1',
        port: 0,
        tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert },
      });
      return port;
    }

    it('serves a client whose certificate the CA signed', async () => {
      const port = await tlsServer();
      const target: HttpTarget = {
        kind: 'tls',
        host: '127.0.0.1',
        port,
        ca: pki.caCert,
        cert: pki.clientCert,
        key: pki.clientKey,
      };
      expect((await httpRequest(target, 'GET', '/fleet/v1/units')).status).to.equal(200);
    });

    it('refuses a client without a certificate', async () => {
      const port = await tlsServer();
      const err = await failure(() =>
        httpRequest({ kind: 'tls', host: '127.0.0.1', port, ca: pki.caCert }, 'GET', '/fleet/v1/units'),
      );
      expect(err).to.be.instanceOf(Error);
    });

    it('refuses a client whose certificate another CA signed', async () => {
      const port = await tlsServer();
      const target: HttpTarget = {
        kind: 'tls',
        host: '127.0.0.1',
        port,
        ca: pki.caCert,
        cert: pki.strangerCert,
        key: pki.strangerKey,
      };
      const err = await failure(() => httpRequest(target, 'GET', '/fleet/v1/units'));
      expect(err).to.be.instanceOf(Error);
    });

    it('refuses a plain HTTP client', async () => {
      const port = await tlsServer();
      const err = await failure(() =>
        httpRequest({ kind: 'tcp', host: '127.0.0.1', port }, 'GET', '/fleet/v1/units'),
      );
      expect(err).to.be.instanceOf(Error);
    });

    it('refuses TLS material that cannot be loaded, or is missing, with CONFIG_INVALID', async () => {
      for (const tls of [
        { cert: 'not a certificate', key: pki.serverKey, ca: pki.caCert },
        { cert: pki.serverCert, key: pki.clientKey, ca: pki.caCert },
        { cert: pki.serverCert, key: pki.serverKey, ca: '' },
      ]) {
        const err = await failure(() => server().listenTcp({ host: '127.0.0.1', port: 0, tls }));
        expect(isFleetError(err, 'CONFIG_INVALID'), String(err)).to.equal(true);
      }
    });
  });

  describe('access control', () => {
    const UNIT_BODY = JSON.stringify({
      desiredState: 'launched',
      options: [{ section: 'Service', name: 'ExecStart', value: '/bin/true' }],
    });
    const JSON_HEADERS = { 'Content-Type': 'application/json' };
    const READ_ONLY =
      '{"error":{"code":403,"message":"read-only access: this listener or client certificate may only GET, not PUT"}}';

    it('serves only GET on a read-only socket (403 for every other method, nothing stored), and full access on the other', async () => {
      const registry = new InMemoryRegistry();
      const s = server({ registry });
      const rw = socketPath();
      const ro = socketPath();
      await s.listenUnix(rw);
      await s.listenUnix(ro, { mode: 0o666, access: { kind: 'read' } });
      expect((await stat(ro)).mode & 0o777).to.equal(0o666);
      const roTarget: HttpTarget = { kind: 'unix', socketPath: ro };
      expect((await httpRequest(roTarget, 'GET', '/fleet/v1/units')).status).to.equal(200);
      expect((await httpRequest(roTarget, 'GET', '/fleet/v1/machines')).status).to.equal(200);
      const put = await httpRequest(roTarget, 'PUT', '/fleet/v1/units/web.service', {
        headers: JSON_HEADERS,
        body: UNIT_BODY,
      });
      expect(put.status).to.equal(403);
      expect(put.body).to.equal(READ_ONLY);
      for (const [method, target] of [
        ['DELETE', '/fleet/v1/units/web.service'],
        ['PATCH', '/fleet/v1/machines'],
        ['POST', '/fleet/v1/units'],
      ] as const) {
        expect((await httpRequest(roTarget, method, target)).status, method).to.equal(403);
      }
      expect(await registry.listUnits()).to.deep.equal([]);
      const ok = await httpRequest({ kind: 'unix', socketPath: rw }, 'PUT', '/fleet/v1/units/web.service', {
        headers: JSON_HEADERS,
        body: UNIT_BODY,
      });
      expect(ok.status).to.equal(201);
    });

    it('gives the socket file the group asked for, by name or ID', async () => {
      const groups = await readFile('/etc/group', 'utf8');
      const line = groups.split('\n').find((l) => l.startsWith('nogroup:') || l.startsWith('nobody:'));
      const [name = '', , gid = ''] = (line ?? '').split(':');
      expect(name, 'a nogroup or nobody group in /etc/group').to.not.equal('');
      const byName = socketPath();
      await server().listenUnix(byName, { mode: 0o660, group: name });
      expect((await stat(byName)).gid).to.equal(Number(gid));
      const byId = socketPath();
      await server().listenUnix(byId, { group: gid });
      expect((await stat(byId)).gid).to.equal(Number(gid));
      const err = await failure(() => server().listenUnix(socketPath(), { group: 'no-such-group-here' }));
      expect(isFleetError(err, 'API_LISTEN_FAILED'), String(err)).to.equal(true);
    });

    it('lets only the listed client certificates write over TLS; the others may read', async () => {
      const registry = new InMemoryRegistry();
      const tls = { cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert };
      const client = (port: number): HttpTarget => ({
        kind: 'tls',
        host: '127.0.0.1',
        port,
        ca: pki.caCert,
        cert: pki.clientCert,
        key: pki.clientKey,
      });
      const others = await server({ registry }).listenTcp({
        host: '127.0.0.1',
        port: 0,
        tls,
        access: { kind: 'writers', commonNames: ['ops-admin'] },
      });
      expect((await httpRequest(client(others.port), 'GET', '/fleet/v1/units')).status).to.equal(200);
      const refused = await httpRequest(client(others.port), 'PUT', '/fleet/v1/units/web.service', {
        headers: JSON_HEADERS,
        body: UNIT_BODY,
      });
      expect(refused.body).to.equal(READ_ONLY);
      expect(await registry.listUnits()).to.deep.equal([]);
      const listed = await server({ registry }).listenTcp({
        host: '127.0.0.1',
        port: 0,
        tls,
        access: { kind: 'writers', commonNames: ['ops-admin', 'client'] },
      });
      const put = await httpRequest(client(listed.port), 'PUT', '/fleet/v1/units/web.service', {
        headers: JSON_HEADERS,
        body: UNIT_BODY,
      });
      expect(put.status).to.equal(201);
    });
  });

  describe('close', () => {
    it('lets a request in flight finish, with Connection: close, before resolving', async () => {
      const registry = new GatedRegistry();
      const s = server({ registry });
      const file = socketPath();
      await s.listenUnix(file);
      const reply = httpRequest({ kind: 'unix', socketPath: file }, 'GET', '/fleet/v1/units');
      await eventually(() => expect(registry.entered).to.equal(true));
      let closed = false;
      const closing = s.close().then(() => (closed = true));
      // No new connections once closing has begun.
      const refused = await failure(() =>
        httpRequest({ kind: 'unix', socketPath: file }, 'GET', '/fleet/v1/units'),
      );
      expect(refused).to.be.instanceOf(Error);
      expect(closed).to.equal(false);
      registry.open();
      const res = await reply;
      expect(res.status).to.equal(200);
      expect(res.headers.connection).to.equal('close');
      await closing;
      expect(closed).to.equal(true);
    });

    it('closes idle keep-alive connections', async () => {
      const s = server();
      const file = socketPath();
      await s.listenUnix(file);
      const agent = new http.Agent({ keepAlive: true });
      try {
        let socket: net.Socket | undefined;
        await new Promise<void>((resolve, reject) => {
          const req = http.request({ socketPath: file, path: '/fleet/v1/units', agent }, (res) => {
            socket = res.socket;
            res.resume();
            res.on('end', resolve);
          });
          req.on('error', reject);
          req.end();
        });
        expect(socket?.destroyed).to.equal(false);
        await s.close();
        await eventually(() => expect(socket?.destroyed).to.equal(true));
      } finally {
        agent.destroy();
      }
    });

    it('drops a request that outlives the close timeout', async () => {
      const registry = new GatedRegistry();
      const logger = new MemoryLogger();
      const s = server({ registry, logger, closeTimeoutMs: 100 });
      const file = socketPath();
      await s.listenUnix(file);
      const reply = failure(() => httpRequest({ kind: 'unix', socketPath: file }, 'GET', '/fleet/v1/units'));
      await eventually(() => expect(registry.entered).to.equal(true));
      await s.close();
      expect(await reply).to.be.instanceOf(Error);
      expect(logger.records.some((r) => r.message === 'api close timed out; dropping connections')).to.equal(
        true,
      );
      registry.open();
    });
  });

  describe('socket activation', () => {
    it('serves on a listening socket inherited from systemd-socket-activate', async function () {
      this.timeout(20_000);
      const file = socketPath();
      const dist = (p: string) => new URL(`../../../${p}`, import.meta.url).href;
      const code = `
        import { ApiServer } from ${JSON.stringify(dist('fleetd/api/server.js'))};
        import { InMemoryRegistry } from ${JSON.stringify(dist('registry/in-memory-registry.js'))};
        import { silentLogger } from ${JSON.stringify(dist('lib/logger.js'))};
        if (process.env.LISTEN_FDS !== '1') process.exit(3);
        await new ApiServer({ registry: new InMemoryRegistry(), logger: silentLogger }).listenFd(3);
      `;
      const child = spawn(
        'systemd-socket-activate',
        ['-l', file, process.execPath, '--input-type=module', '-e', code],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      children.push(child);
      await eventually(async () => expect((await lstat(file)).isSocket()).to.equal(true), {
        timeoutMs: 10_000,
      });
      const res = await httpRequest({ kind: 'unix', socketPath: file }, 'GET', '/fleet/v1/units');
      expect(res.status).to.equal(200);
      expect(res.body).to.equal('{}');
    });
  });
});

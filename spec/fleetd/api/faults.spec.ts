import * as net from 'node:net';
import * as path from 'node:path';
import { expect } from 'chai';
import { after, afterEach, before, describe, it } from 'mocha';
import { MemoryLogger } from '../../../lib/logger.js';
import { ApiServer } from '../../../fleetd/api/server.js';
import { InMemoryRegistry } from '../../../registry/in-memory-registry.js';
import { httpClient, type HttpClient } from '../../helpers/http.js';
import { unitRecord } from '../../helpers/registry-builders.js';
import { JSON_HEADERS, errorJson, tempDir } from './api-harness.js';

const UNAVAILABLE = errorJson(503, 'fleet server unable to communicate with etcd');

/** Every registry-backed endpoint, with a body where it needs one. */
const ENDPOINTS: [string, string, string | undefined][] = [
  ['GET', '/fleet/v1/units', undefined],
  ['GET', '/fleet/v1/units/web.service', undefined],
  ['PUT', '/fleet/v1/units/web.service', '{"desiredState":"launched"}'],
  [
    'PUT',
    '/fleet/v1/units/db.service',
    '{"options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]}',
  ],
  ['DELETE', '/fleet/v1/units/web.service', undefined],
  ['GET', '/fleet/v1/state', undefined],
  ['GET', '/fleet/v1/state/web.service', undefined],
  ['GET', '/fleet/v1/machines', undefined],
  ['PATCH', '/fleet/v1/machines', '[{"op":"add","path":"/m1/metadata/a","value":"b"}]'],
];

/** Fault paths against InMemoryRegistry's fault controls: fast, and no etcd needed. */
describe('fleetd/api faults', () => {
  let dir: { dir: string; cleanup(): Promise<void> };
  let sockets = 0;
  const servers: ApiServer[] = [];

  before(async () => {
    dir = await tempDir('fleet-api-faults-');
  });

  after(async () => {
    await dir.cleanup();
  });

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function serve(
    registry: InMemoryRegistry,
    ready?: () => boolean,
  ): Promise<{ request: HttpClient; logger: MemoryLogger; socketPath: string }> {
    const logger = new MemoryLogger();
    const server = new ApiServer({ registry, logger, ready });
    servers.push(server);
    const socketPath = path.join(dir.dir, `faults-${++sockets}.sock`);
    await server.listenUnix(socketPath);
    return { request: httpClient({ kind: 'unix', socketPath }), logger, socketPath };
  }

  async function call(request: HttpClient, method: string, url: string, body: string | undefined) {
    return request(method, url, body === undefined ? {} : { headers: JSON_HEADERS, body });
  }

  it('answers 503 on every endpoint while the registry is partitioned, and serves again after heal', async () => {
    const registry = new InMemoryRegistry();
    await registry.submitUnit(unitRecord('web.service'), 'inactive');
    const { request } = await serve(registry);
    registry.partition();
    for (const [method, url, body] of ENDPOINTS) {
      const res = await call(request, method, url, body);
      expect(res.status, `${method} ${url}`).to.equal(503);
      expect(res.body).to.equal(UNAVAILABLE);
      expect(res.headers['retry-after']).to.equal('1');
    }
    registry.heal();
    expect((await request('GET', '/fleet/v1/units/web.service')).status).to.equal(200);
  });

  it('answers 503 for one failed registry call and then serves normally', async () => {
    const registry = new InMemoryRegistry();
    const { request, logger } = await serve(registry);
    registry.failNext(1);
    expect((await request('GET', '/fleet/v1/machines')).status).to.equal(503);
    expect((await request('GET', '/fleet/v1/machines')).status).to.equal(200);
    const warning = logger.records.find((r) => r.message === 'api registry unavailable');
    expect(warning?.level).to.equal('warn');
    expect(warning?.fields).to.include({
      method: 'GET',
      path: '/fleet/v1/machines',
      error: 'injected failure',
    });
  });

  it('answers every request with 503 while not ready, whatever the path or method', async () => {
    let ready = false;
    const { request } = await serve(new InMemoryRegistry(), () => ready);
    for (const [method, url] of [
      ['GET', '/fleet/v1/units'],
      ['GET', '/fleet/v1/discovery'],
      ['POST', '/fleet/v1/units'],
      ['GET', '/nope'],
      ['GET', '/'],
    ] as const) {
      const res = await request(method, url);
      expect(res.status, `${method} ${url}`).to.equal(503);
      expect(res.body).to.equal(UNAVAILABLE);
    }
    ready = true;
    expect((await request('GET', '/fleet/v1/units')).status).to.equal(200);
  });

  it('answers a registry failure that is not retryable with 500 and an empty message, logged as an error', async () => {
    const registry = new InMemoryRegistry();
    const { request, logger } = await serve(registry);
    await registry.close();
    const res = await request('GET', '/fleet/v1/units');
    expect(res.status).to.equal(500);
    expect(res.body).to.equal(errorJson(500, ''));
    expect(logger.records.find((r) => r.message === 'api request failed')?.level).to.equal('error');
  });

  it('answers a bug in the registry with 500 and keeps serving', async () => {
    const registry = new InMemoryRegistry();
    registry.listMachines = () => {
      throw new TypeError('cannot read properties of undefined');
    };
    const { request } = await serve(registry);
    const res = await request('GET', '/fleet/v1/machines');
    expect(res.status).to.equal(500);
    expect(res.body).to.equal(errorJson(500, ''));
    expect((await request('GET', '/fleet/v1/units')).status).to.equal(200);
  });

  it('submits again when a unit is destroyed between its submit and its state change', async () => {
    const registry = new InMemoryRegistry();
    await registry.submitUnit(unitRecord('web.service'), 'inactive');
    const setDesiredState = registry.setDesiredState.bind(registry);
    let raced = false;
    registry.setDesiredState = async (name, state) => {
      if (!raced) {
        raced = true;
        await registry.destroyUnit(name);
      }
      return setDesiredState(name, state);
    };
    const { request } = await serve(registry);
    const body = JSON.stringify({
      options: [{ section: 'Service', name: 'ExecStart', value: '/bin/sleep infinity' }],
      desiredState: 'launched',
    });
    const res = await request('PUT', '/fleet/v1/units/web.service', { headers: JSON_HEADERS, body });
    expect(res.status).to.equal(201);
    expect((await registry.getUnit('web.service'))?.desiredState).to.equal('launched');
  });

  it('answers 409 when a PUT keeps losing races', async () => {
    const registry = new InMemoryRegistry();
    await registry.submitUnit(unitRecord('web.service'), 'inactive');
    registry.setDesiredState = () => Promise.resolve(false);
    const { request } = await serve(registry);
    const body = JSON.stringify({
      options: [{ section: 'Service', name: 'ExecStart', value: '/bin/sleep infinity' }],
      desiredState: 'launched',
    });
    const res = await request('PUT', '/fleet/v1/units/web.service', { headers: JSON_HEADERS, body });
    expect(res.status).to.equal(409);
    expect(res.body).to.equal(errorJson(409, 'unit "web.service" changed concurrently; try again'));
  });

  it('survives malformed HTTP and clients that hang up mid-body', async () => {
    const { request, socketPath } = await serve(new InMemoryRegistry());
    const send = (bytes: string, end: boolean): Promise<string> =>
      new Promise((resolve) => {
        const socket = net.connect({ path: socketPath });
        let reply = '';
        socket.on('data', (c: Buffer) => {
          reply += c.toString();
        });
        socket.on('close', () => {
          resolve(reply);
        });
        socket.on('error', () => {
          resolve(reply);
        });
        socket.write(bytes, () => {
          if (end) socket.end();
          else socket.destroy();
        });
      });
    expect(await send('NONSENSE\r\n\r\n', true)).to.match(/^HTTP\/1\.1 400/);
    expect(
      await send('GET /fleet/v1/units HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', true),
    ).to.match(/^HTTP\/1\.1 400/);
    await send(
      'PUT /fleet/v1/units/web.service HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"opt',
      false,
    );
    const res = await request('GET', '/fleet/v1/units');
    expect(res.status).to.equal(200);
  });

  it('serves a request without a Host header on the unix socket', async () => {
    const { socketPath } = await serve(new InMemoryRegistry());
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect({ path: socketPath });
      let text = '';
      socket.on('data', (c: Buffer) => {
        text += c.toString();
      });
      socket.on('end', () => {
        resolve(text);
      });
      socket.on('error', reject);
      socket.end('GET /fleet/v1/units HTTP/1.1\r\nConnection: close\r\n\r\n');
    });
    expect(reply).to.match(/^HTTP\/1\.1 200/);
    expect(reply.endsWith('\r\n\r\n{}')).to.equal(true);
  });
});

import { expect } from 'chai';
import { after, before, describe, it } from 'mocha';
import { MemoryLogger } from '../../../lib/logger.js';
import { ApiServer } from '../../../fleetd/api/server.js';
import { EtcdRegistry } from '../../../registry/etcd-registry.js';
import { findFreePort, useEtcd } from '../../../systemd-fixtures/etcd/etcd-harness.js';
import { httpRequest } from '../../helpers/http.js';
import { createTestPki, type TestPki } from '../../helpers/test-pki.js';
import { apiContract } from './api.contract.js';
import { errorJson, openSubject, tempDir, type RegistrySource, type Transport } from './api-harness.js';

/**
 * The API contract against EtcdRegistry on a real etcd, over each transport: a unix socket in a
 * temp folder, plain HTTP on loopback, and TLS with client certificates. Each test gets its own key
 * prefix, so it starts from an empty registry.
 */
describe('fleetd/api on etcd', () => {
  const etcd = useEtcd();
  let prefixes = 0;
  let dir: { dir: string; cleanup(): Promise<void> };
  let pki: TestPki;

  const source: RegistrySource = {
    make: () =>
      Promise.resolve(
        new EtcdRegistry({
          endpoints: [etcd.current.clientUrl],
          prefix: `/fleet-api-${process.pid}-${++prefixes}/`,
        }),
      ),
  };

  before(async function () {
    this.timeout(20_000);
    dir = await tempDir('fleet-api-etcd-');
    pki = await createTestPki(dir.dir);
  });

  after(async () => {
    await dir.cleanup();
  });

  for (const transport of ['unix', 'tcp', 'tls'] as Transport[]) {
    apiContract(`EtcdRegistry over ${transport}`, (tuning) =>
      openSubject(source, transport, tuning, { socketDir: dir.dir, pki }),
    );
  }

  describe('when etcd cannot be reached', () => {
    it('answers 503 "fleet server unable to communicate with etcd" and keeps serving', async function () {
      this.timeout(20_000);
      const port = await findFreePort();
      const registry = new EtcdRegistry({ endpoints: [`http://127.0.0.1:${port}`], requestTimeoutMs: 300 });
      const server = new ApiServer({ registry, logger: new MemoryLogger() });
      const socketPath = `${dir.dir}/down.sock`;
      try {
        await server.listenUnix(socketPath);
        const target = { kind: 'unix', socketPath } as const;
        for (const path of [
          '/fleet/v1/units',
          '/fleet/v1/units/web.service',
          '/fleet/v1/state',
          '/fleet/v1/machines',
        ]) {
          const res = await httpRequest(target, 'GET', path);
          expect(res.status, path).to.equal(503);
          expect(res.body).to.equal(errorJson(503, 'fleet server unable to communicate with etcd'));
        }
        expect((await httpRequest(target, 'GET', '/fleet/v1/discovery')).status).to.equal(200);
      } finally {
        await server.close();
        await registry.close();
      }
    });
  });
});

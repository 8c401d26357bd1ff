import { expect } from 'chai';
import { after, afterEach, before, describe, it } from 'mocha';
import * as http from 'node:http';
import * as path from 'node:path';

import { ApiServer } from '../../../fleetd/api/server.js';
import { MemoryLogger } from '../../../lib/logger.js';
import { EtcdRegistry } from '../../../registry/etcd-registry.js';
import { InMemoryRegistry } from '../../../registry/in-memory-registry.js';
import type { Registry } from '../../../registry/registry.js';
import type { ClusterEvent } from '../../../unit/cluster-events.js';
import { useEtcd } from '../../../systemd-fixtures/etcd/etcd-harness.js';
import { eventually } from '../../../systemd-fixtures/eventually.js';
import { httpRequest, type HttpTarget } from '../../helpers/http.js';
import { tempDir } from './api-harness.js';

const DAY = { maxAgeMs: 86_400_000 };

function event(kind: ClusterEvent['kind'], unit: string, machine: string, time = Date.now()): ClusterEvent {
  return { time, kind, unit, machine, message: `${kind} ${unit}`, reporter: machine };
}

/** An open `?watch=true` stream: the lines so far, parsed. */
interface Follow {
  readonly lines: Record<string, unknown>[];
  close(): void;
}

function follow(socketPath: string, query: string): Promise<Follow> {
  return new Promise((resolve, reject) => {
    const lines: Record<string, unknown>[] = [];
    let rest = '';
    const req = http.request(
      { socketPath, path: `/fleet/v1/events?watch=true${query}`, method: 'GET' },
      (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`status ${res.statusCode}`));
          return;
        }
        expect(res.headers['content-type']).to.equal('application/x-ndjson');
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          rest += chunk;
          let nl: number;
          while ((nl = rest.indexOf('\n')) !== -1) {
            lines.push(JSON.parse(rest.slice(0, nl)) as Record<string, unknown>);
            rest = rest.slice(nl + 1);
          }
        });
        res.on('error', () => undefined);
        resolve({ lines, close: () => req.destroy() });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function eventsApi(label: string, make: () => Registry, onEtcd?: () => { compact(): Promise<void> }): void {
  describe(`api events: ${label}`, function () {
    this.timeout(20_000);
    let dir: { dir: string; cleanup(): Promise<void> };
    const closers: (() => Promise<unknown>)[] = [];
    let n = 0;

    before(async () => {
      dir = await tempDir('fleet-events-api-');
    });
    afterEach(async () => {
      for (const c of closers.splice(0).reverse()) await c();
    });
    after(async () => {
      await dir.cleanup();
    });

    async function serve(
      tokenLimit = 100,
    ): Promise<{ registry: Registry; target: HttpTarget; socketPath: string }> {
      const registry = make();
      closers.push(() => registry.close());
      const server = new ApiServer({ registry, logger: new MemoryLogger(), tokenLimit });
      closers.push(() => server.close());
      const socketPath = path.join(dir.dir, `api-${++n}.sock`);
      await server.listenUnix(socketPath);
      return { registry, target: { kind: 'unix', socketPath }, socketPath };
    }

    it('lists events oldest first, filtered by unit, machine, kind and since, in pages', async () => {
      const { registry, target } = await serve(2);
      const t = Date.now();
      await registry.recordEvents(
        [
          event('placed', 'a.service', 'm1', t - 3000),
          event('started', 'a.service', 'm1', t - 2000),
          event('started', 'b.service', 'm2', t - 1000),
        ],
        DAY,
      );
      const first = (await httpRequest(target, 'GET', '/fleet/v1/events')).json() as {
        events: { kind: string; unit: string; time: string }[];
        nextPageToken?: string;
        revision: number;
      };
      expect(first.events.map((e) => e.kind)).to.deep.equal(['placed', 'started']);
      expect(first.events[0]?.time).to.equal(new Date(t - 3000).toISOString());
      expect(first.nextPageToken).to.be.a('string');
      expect(first.revision).to.be.greaterThan(0);
      const second = (
        await httpRequest(target, 'GET', `/fleet/v1/events?nextPageToken=${first.nextPageToken ?? ''}`)
      ).json() as { events: { unit: string }[]; nextPageToken?: string };
      expect(second.events.map((e) => e.unit)).to.deep.equal(['b.service']);
      expect(second.nextPageToken).to.equal(undefined);
      const get = async (q: string) =>
        (
          (await httpRequest(target, 'GET', `/fleet/v1/events?${q}`)).json() as {
            events: { kind: string; unit: string }[];
          }
        ).events.map((e) => `${e.kind} ${e.unit}`);
      expect(await get('unit=a.service')).to.deep.equal(['placed a.service', 'started a.service']);
      expect(await get('machine=m2')).to.deep.equal(['started b.service']);
      expect(await get('kind=placed')).to.deep.equal(['placed a.service']);
      expect(await get(`since=${encodeURIComponent(new Date(t - 1500).toISOString())}`)).to.deep.equal([
        'started b.service',
      ]);
    });

    it('refuses an unknown kind, a bad since and a bad revision with 400, naming them', async () => {
      const { target } = await serve();
      const kind = await httpRequest(target, 'GET', '/fleet/v1/events?kind=exploded');
      expect(kind.status).to.equal(400);
      expect(kind.body).to.contain('unknown event kind \\"exploded\\"');
      const since = await httpRequest(target, 'GET', '/fleet/v1/events?since=yesterday');
      expect(since.status).to.equal(400);
      expect(since.body).to.contain('since must be an RFC 3339 time');
      expect((await httpRequest(target, 'GET', '/fleet/v1/events?revision=-1')).status).to.equal(400);
      expect((await httpRequest(target, 'POST', '/fleet/v1/events')).status).to.equal(405);
    });

    it(
      'streams NDJSON: replays after a revision, then follows new events' +
        (onEtcd ? ' across an etcd compaction' : ''),
      async () => {
        const { registry, socketPath } = await serve();
        await registry.recordEvents([event('placed', 'a.service', 'm1')], DAY);
        const { revision } = await registry.listEvents();
        await registry.recordEvents([event('started', 'a.service', 'm1')], DAY);
        const stream = await follow(socketPath, `&revision=${revision}`);
        closers.push(() => {
          stream.close();
          return Promise.resolve();
        });
        await eventually(() => {
          expect(stream.lines.map((l) => l.kind)).to.deep.equal(['started']);
        });
        await onEtcd?.().compact();
        await registry.recordEvents([event('stopped', 'a.service', 'm1')], DAY);
        await eventually(() => {
          expect(stream.lines.map((l) => l.kind)).to.deep.equal(['started', 'stopped']);
        });
        // A new follower from the old, now compacted, revision still replays what is kept.
        const late = await follow(socketPath, `&revision=${revision}&unit=a.service`);
        closers.push(() => {
          late.close();
          return Promise.resolve();
        });
        await eventually(() => {
          expect(late.lines.map((l) => l.kind)).to.deep.equal(['started', 'stopped']);
        });
      },
    );

    it('ends streams when the server closes', async () => {
      const registry = make();
      closers.push(() => registry.close());
      const server = new ApiServer({ registry, logger: new MemoryLogger(), closeTimeoutMs: 10_000 });
      const socketPath = path.join(dir.dir, `api-${++n}.sock`);
      await server.listenUnix(socketPath);
      const stream = await follow(socketPath, '');
      closers.push(() => {
        stream.close();
        return Promise.resolve();
      });
      const started = Date.now();
      await server.close();
      expect(Date.now() - started).to.be.below(2000);
    });
  });
}

eventsApi('InMemoryRegistry', () => new InMemoryRegistry());

describe('api events on etcd', () => {
  const etcd = useEtcd();
  let prefixes = 0;
  eventsApi(
    'EtcdRegistry',
    () =>
      new EtcdRegistry({
        endpoints: [etcd.current.clientUrl],
        prefix: `/fleet-events-api-${process.pid}-${++prefixes}/`,
        requestTimeoutMs: 1500,
      }),
    () => ({
      compact: async () => {
        const client = etcd.current.client();
        const { header } = await client.kv.range({ key: Buffer.from('/') });
        await client.kv.compact({ revision: header.revision, physical: true });
      },
    }),
  );
});

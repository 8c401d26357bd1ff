import { expect } from 'chai';
import { describe, it } from 'mocha';
import { VERSION } from '../../../lib/version.js';
import { errorJson, type ContractScope } from './api-harness.js';

/** Paths, methods, prefixes, the discovery document and headers every response carries. */
export function routingContract(scope: ContractScope): void {
  describe('routing', () => {
    it('serves the same resources under /fleet/v1 and /v1-alpha', async () => {
      await scope.api.seed.unit('web.service');
      const v1 = await scope.api.request('GET', '/fleet/v1/units');
      const alpha = await scope.api.request('GET', '/v1-alpha/units');
      expect(v1.status).to.equal(200);
      expect(alpha.status).to.equal(200);
      expect(alpha.body).to.equal(v1.body);
    });

    const unknownPaths = [
      '/nope',
      '/fleet',
      '/fleet/v1/',
      '/fleet/v1/nope',
      '/fleet/v2/units',
      '/fleet/v1/units/',
      '/fleet/v1/units/web.service/extra',
      '/fleet/v1/units//web.service',
      '/fleet/v1/state/',
      '/fleet/v1/state/web.service/extra',
      '/fleet/v1/machines/',
      '/fleet/v1/machines/m1',
      '/fleet/v1/discovery/x',
      '/metrics',
    ];
    for (const path of unknownPaths) {
      it(`answers ${path} with 404 and an empty message`, async () => {
        const res = await scope.api.request('GET', path);
        expect(res.status).to.equal(404);
        expect(res.headers['content-type']).to.equal('application/json');
        expect(res.body).to.equal(errorJson(404, ''));
      });
    }

    for (const path of ['/', '/fleet/v1', '/v1-alpha']) {
      it(`answers every method on ${path} with 405, an empty message and an empty Allow`, async () => {
        for (const method of ['GET', 'PUT', 'POST', 'DELETE']) {
          const res = await scope.api.request(method, path);
          expect(res.status, method).to.equal(405);
          expect(res.headers.allow, method).to.equal('');
          expect(res.body, method).to.equal(errorJson(405, ''));
        }
      });
    }

    const wrongMethods: [string, string, string, string][] = [
      ['POST', '/fleet/v1/units', 'only GET supported against this resource', 'GET'],
      ['DELETE', '/fleet/v1/units', 'only GET supported against this resource', 'GET'],
      [
        'POST',
        '/fleet/v1/units/web.service',
        'only GET, PUT and DELETE supported against this resource',
        'GET, PUT, DELETE',
      ],
      [
        'PATCH',
        '/fleet/v1/units/web.service',
        'only GET, PUT and DELETE supported against this resource',
        'GET, PUT, DELETE',
      ],
      ['PUT', '/fleet/v1/machines', 'only GET and PATCH supported against this resource', 'GET, PATCH'],
      ['DELETE', '/fleet/v1/machines', 'only GET and PATCH supported against this resource', 'GET, PATCH'],
      ['PUT', '/fleet/v1/state', 'only GET supported against this resource', 'GET'],
      ['DELETE', '/fleet/v1/state/web.service', 'only GET supported against this resource', 'GET'],
      ['POST', '/fleet/v1/discovery', 'only HTTP GET supported against this resource', 'GET'],
      ['HEAD', '/fleet/v1/units', 'only GET supported against this resource', 'GET'],
    ];
    for (const [method, path, message, allow] of wrongMethods) {
      it(`answers ${method} ${path} with 405, fleet's message and Allow: ${allow}`, async () => {
        const res = await scope.api.request(method, path);
        expect(res.status).to.equal(405);
        expect(res.headers.allow).to.equal(allow);
        // A HEAD response has no body.
        expect(res.body).to.equal(method === 'HEAD' ? '' : errorJson(405, message));
      });
    }

    it('ignores alt=json and unknown query parameters', async () => {
      await scope.api.seed.unit('web.service');
      const plain = await scope.api.request('GET', '/fleet/v1/units/web.service');
      const withQuery = await scope.api.request(
        'GET',
        '/fleet/v1/units/web.service?alt=json&foo=bar&foo=baz',
      );
      expect(withQuery.status).to.equal(200);
      expect(withQuery.body).to.equal(plain.body);
    });

    it('percent-decodes unit names in the path', async () => {
      await scope.api.seed.unit('hello@world.service');
      const res = await scope.api.request('GET', '/fleet/v1/units/hello%40world.service');
      expect(res.status).to.equal(200);
      expect((res.json() as { name: string }).name).to.equal('hello@world.service');
    });

    it('answers a malformed percent escape with 400', async () => {
      const res = await scope.api.request('GET', '/fleet/v1/units/a%zz.service');
      expect(res.status).to.equal(400);
      expect(res.body).to.equal(errorJson(400, 'invalid URL escape in path segment "a%zz.service"'));
    });

    it('sends Server: fleetd/<version> on successes and errors', async () => {
      for (const path of ['/fleet/v1/units', '/nope', '/']) {
        const res = await scope.api.request('GET', path);
        expect(res.headers.server, path).to.equal(`fleetd/${VERSION}`);
      }
    });

    it('logs every request at debug with method, path, status and duration', async () => {
      await scope.api.request('GET', '/fleet/v1/units?alt=json');
      await scope.api.request('DELETE', '/fleet/v1/units/none.service');
      const lines = scope.api.logger.records.filter((r) => r.message === 'api request');
      expect(lines).to.have.length(2);
      expect(lines.map((l) => l.level)).to.deep.equal(['debug', 'debug']);
      expect(lines[0]!.fields).to.include({ method: 'GET', path: '/fleet/v1/units', status: 200 });
      expect(lines[1]!.fields).to.include({
        method: 'DELETE',
        path: '/fleet/v1/units/none.service',
        status: 404,
      });
      expect(lines[0]!.fields.durationMs).to.be.a('number');
    });
  });

  describe('discovery', () => {
    for (const path of ['/fleet/v1/discovery', '/fleet/v1/discovery.json', '/v1-alpha/discovery']) {
      it(`serves the discovery document at ${path}`, async () => {
        const res = await scope.api.request('GET', `${path}?alt=json`);
        expect(res.status).to.equal(200);
        expect(res.headers['content-type']).to.equal('application/json');
        const doc = res.json() as Record<string, unknown>;
        expect(doc).to.include({
          kind: 'discovery#restDescription',
          discoveryVersion: 'v1',
          basePath: '/fleet/v1/',
        });
        expect(doc.schemas).to.have.keys(
          'Machine',
          'MachinePage',
          'Unit',
          'UnitOption',
          'UnitPage',
          'UnitState',
          'UnitStatePage',
        );
        expect(doc.resources).to.have.keys('Machines', 'Units', 'UnitState');
      });
    }
  });
}

import { expect } from 'chai';
import { describe, it } from 'mocha';
import { machineRecord } from '../../helpers/registry-builders.js';
import { errorJson, type ContractScope } from './api-harness.js';

/** `GET /machines` and `PATCH /machines`. */
export function machinesContract(scope: ContractScope): void {
  function patch(body: unknown) {
    return scope.api.request('PATCH', '/fleet/v1/machines', {
      headers: { 'Content-Type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  }

  async function metadataOf(id: string): Promise<Record<string, string> | undefined> {
    const machines = await scope.api.registry.listMachines();
    return machines.find((m) => m.id === id)?.metadata;
  }

  describe('GET /machines', () => {
    it('serializes no machines as {}', async () => {
      const res = await scope.api.request('GET', '/fleet/v1/machines');
      expect(res.status).to.equal(200);
      expect(res.body).to.equal('{}');
    });

    it('lists machines by ID, metadata keys sorted and omitted when empty', async () => {
      await scope.api.seed.machine(machineRecord('m2', {}, '10.0.0.2'));
      await scope.api.seed.machine(machineRecord('m1', { region: 'r1', hostname: 'smoke1' }, '10.0.0.1'));
      const res = await scope.api.request('GET', '/fleet/v1/machines?alt=json');
      expect(res.headers['content-type']).to.equal('application/json');
      expect(res.body).to.equal(
        '{"machines":[' +
          '{"id":"m1","metadata":{"hostname":"smoke1","region":"r1"},"primaryIP":"10.0.0.1"},' +
          '{"id":"m2","primaryIP":"10.0.0.2"}' +
          ']}',
      );
    });

    it('pages machines with the server token limit', async () => {
      const api = await scope.open({ tokenLimit: 1 });
      await api.seed.machine(machineRecord('m1'));
      await api.seed.machine(machineRecord('m2'));
      const first = (await api.request('GET', '/fleet/v1/machines')).json() as {
        machines: { id: string }[];
        nextPageToken: string;
      };
      expect(first.machines.map((m) => m.id)).to.deep.equal(['m1']);
      expect(first.nextPageToken).to.equal('AQACAA==');
      const second = (
        await api.request('GET', `/fleet/v1/machines?nextPageToken=${first.nextPageToken}`)
      ).json();
      expect(second).to.deep.equal({ machines: [{ id: 'm2', primaryIP: '10.250.0.10' }] });
    });
  });

  describe('machine drains (/machines/<id>/drain)', () => {
    const put = (id: string, body: unknown) =>
      scope.api.request('PUT', `/fleet/v1/machines/${id}/drain`, {
        headers: { 'Content-Type': 'application/json' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });

    it('answers ready for a machine that is not draining', async () => {
      await scope.api.seed.machine(machineRecord('m1'));
      const res = await scope.api.request('GET', '/fleet/v1/machines/m1/drain');
      expect(res.status).to.equal(200);
      expect(res.body).to.equal('{"machineID":"m1","state":"ready"}');
    });

    it('marks a live machine draining, shows it in GET /machines, and undrains it', async () => {
      await scope.api.seed.machine(machineRecord('m1', {}, '10.0.0.1'));
      await scope.api.seed.machine(machineRecord('m2', {}, '10.0.0.2'));
      const res = await put('m1', { maxParallel: 2, force: true });
      expect(res.status).to.equal(200);
      expect(res.json()).to.include({ machineID: 'm1', state: 'draining', maxParallel: 2, force: true });
      expect((await scope.api.registry.getDrain('m1'))?.mark).to.include({ maxParallel: 2, force: true });
      const list = await scope.api.request('GET', '/fleet/v1/machines');
      expect(list.body).to.equal(
        '{"machines":[{"id":"m1","primaryIP":"10.0.0.1","state":"draining"},{"id":"m2","primaryIP":"10.0.0.2"}]}',
      );
      expect((await scope.api.request('DELETE', '/fleet/v1/machines/m1/drain')).status).to.equal(204);
      expect(await scope.api.registry.getDrain('m1')).to.equal(undefined);
      const again = await scope.api.request('DELETE', '/fleet/v1/machines/m1/drain');
      expect(again.status).to.equal(404);
      expect(again.body).to.equal(errorJson(404, 'machine m1 is not draining'));
    });

    it('defaults to one unit at a time, without force, for an empty body', async () => {
      await scope.api.seed.machine(machineRecord('m1'));
      expect((await scope.api.request('PUT', '/fleet/v1/machines/m1/drain')).status).to.equal(200);
      expect((await scope.api.registry.getDrain('m1'))?.mark).to.include({ maxParallel: 1, force: false });
    });

    const bad: readonly [string, unknown, number, string][] = [
      [
        'a zero maxParallel',
        { maxParallel: 0 },
        400,
        'field "maxParallel" must be a whole number from 1 to 1000, got 0',
      ],
      [
        'a fractional maxParallel',
        { maxParallel: 1.5 },
        400,
        'field "maxParallel" must be a whole number from 1 to 1000, got 1.5',
      ],
      [
        'a string maxParallel',
        { maxParallel: '2' },
        400,
        'field "maxParallel" must be a whole number from 1 to 1000, got string',
      ],
      ['a string force', { force: 'yes' }, 400, 'field "force" must be a boolean, got string'],
      ['an unknown field', { parallel: 2 }, 400, 'unknown field "parallel"'],
    ];
    for (const [label, body, status, message] of bad) {
      it(`refuses ${label} with ${status}, writing nothing`, async () => {
        await scope.api.seed.machine(machineRecord('m1'));
        const res = await put('m1', body);
        expect(res.status).to.equal(status);
        expect(res.body).to.contain(message.replace(/"/g, '\\"'));
        expect(await scope.api.registry.getDrain('m1')).to.equal(undefined);
      });
    }

    it('refuses to drain a machine that is not live (404), writing nothing', async () => {
      const res = await put('ghost', {});
      expect(res.status).to.equal(404);
      expect(res.body).to.equal(errorJson(404, 'no live machine ghost'));
      expect(await scope.api.registry.getDrain('ghost')).to.equal(undefined);
    });

    it('answers 405 for another method', async () => {
      const res = await scope.api.request('POST', '/fleet/v1/machines/m1/drain');
      expect(res.status).to.equal(405);
      expect(res.headers.allow).to.equal('GET, PUT, DELETE');
    });
  });

  describe('PATCH /machines', () => {
    it('adds metadata with fleet object value form: 204 with a JSON Content-Type and no body', async () => {
      await scope.api.seed.machine(machineRecord('m1', { region: 'r1' }));
      const res = await patch([{ op: 'add', path: '/m1/metadata/role', value: { value: 'web' } }]);
      expect(res.status).to.equal(204);
      expect(res.headers['content-type']).to.equal('application/json');
      expect(res.body).to.equal('');
      expect(await metadataOf('m1')).to.deep.equal({ region: 'r1', role: 'web' });
      const listed = (await scope.api.request('GET', '/fleet/v1/machines')).json() as {
        machines: { metadata: Record<string, string> }[];
      };
      expect(listed.machines[0]?.metadata).to.deep.equal({ region: 'r1', role: 'web' });
    });

    it('accepts the plain string value form that fleet documented', async () => {
      await scope.api.seed.machine(machineRecord('m1'));
      expect((await patch([{ op: 'replace', path: '/m1/metadata/role', value: 'db' }])).status).to.equal(204);
      expect(await metadataOf('m1')).to.deep.equal({ role: 'db' });
    });

    it('applies operations in order; remove hides a configured key', async () => {
      await scope.api.seed.machine(machineRecord('m1', { region: 'r1', disk: 'ssd' }));
      const res = await patch([
        { op: 'add', path: '/m1/metadata/role', value: 'web' },
        { op: 'replace', path: '/m1/metadata/role', value: { value: 'db' } },
        { op: 'remove', path: '/m1/metadata/region' },
      ]);
      expect(res.status).to.equal(204);
      expect(await metadataOf('m1')).to.deep.equal({ disk: 'ssd', role: 'db' });
    });

    it('matches operation fields case-insensitively, as Go did', async () => {
      await scope.api.seed.machine(machineRecord('m1'));
      const res = await patch([{ OP: 'add', Path: '/m1/metadata/role', Value: { VALUE: 'web' } }]);
      expect(res.status).to.equal(204);
      expect(await metadataOf('m1')).to.deep.equal({ role: 'web' });
    });

    it('accepts an empty list', async () => {
      expect((await patch([])).status).to.equal(204);
    });

    it('answers a machine that is not live with 404 and changes nothing, not even for live ones (fleet stored both)', async () => {
      await scope.api.seed.machine(machineRecord('m1'));
      const res = await patch([
        { op: 'add', path: '/m1/metadata/role', value: 'web' },
        { op: 'add', path: '/nobody/metadata/role', value: 'web' },
      ]);
      expect(res.body).to.equal(errorJson(404, 'no live machine "nobody": no metadata was changed'));
      expect(await metadataOf('m1')).to.deep.equal({});
      expect(await metadataOf('nobody')).to.equal(undefined);
    });

    it('applies every operation of a batch, in order, at once', async () => {
      await scope.api.seed.machine(machineRecord('m1', { region: 'eu' }));
      await scope.api.seed.machine(machineRecord('m2'));
      const res = await patch([
        { op: 'add', path: '/m1/metadata/role', value: 'web' },
        { op: 'add', path: '/m2/metadata/role', value: 'db' },
        { op: 'replace', path: '/m1/metadata/role', value: 'cache' },
        { op: 'remove', path: '/m1/metadata/region' },
      ]);
      expect(res.status, res.body).to.equal(204);
      expect(await metadataOf('m1')).to.deep.equal({ role: 'cache' });
      expect(await metadataOf('m2')).to.deep.equal({ role: 'db' });
    });

    const badContentTypes: [string, Record<string, string>][] = [
      ['text/plain', { 'Content-Type': 'text/plain' }],
      ['no Content-Type', {}],
      ['a form', { 'Content-Type': 'application/x-www-form-urlencoded' }],
    ];
    for (const [label, headers] of badContentTypes) {
      it(`answers ${label} with 415 and changes nothing (fleet accepted any body type)`, async () => {
        await scope.api.seed.machine(machineRecord('m1'));
        const res = await scope.api.request('PATCH', '/fleet/v1/machines', {
          headers,
          body: JSON.stringify([{ op: 'add', path: '/m1/metadata/role', value: 'web' }]),
        });
        expect(res.status, res.body).to.equal(415);
        expect(await metadataOf('m1')).to.deep.equal({});
      });
    }

    it('answers more operations than one etcd transaction takes with 400', async () => {
      await scope.api.seed.machine(machineRecord('m1'));
      const ops = Array.from({ length: 129 }, (_, i) => ({
        op: 'add',
        path: `/m1/metadata/k${i}`,
        value: 'v',
      }));
      const res = await patch(ops);
      expect(res.body).to.equal(errorJson(400, 'at most 128 operations at once, got 129'));
      expect(await metadataOf('m1')).to.deep.equal({});
    });

    const invalid: [string, unknown, string][] = [
      [
        'an unknown op',
        [{ op: 'move', path: '/m1/metadata/role', value: 'x' }],
        'invalid op: expect add, remove, or replace',
      ],
      [
        'a missing op',
        [{ path: '/m1/metadata/role', value: 'x' }],
        'invalid op: expect add, remove, or replace',
      ],
      [
        'a path without metadata',
        [{ op: 'add', path: '/m1/role', value: 'x' }],
        'machine metadata path invalid',
      ],
      [
        'a path with a bad key',
        [{ op: 'add', path: '/m1/metadata/ro le', value: 'x' }],
        'machine metadata path invalid',
      ],
      [
        'a path without a machine',
        [{ op: 'add', path: '//metadata/role', value: 'x' }],
        'machine metadata path invalid',
      ],
      [
        'a relative path',
        [{ op: 'add', path: 'm1/metadata/role', value: 'x' }],
        'machine metadata path invalid',
      ],
      [
        'add without a value',
        [{ op: 'add', path: '/m1/metadata/role' }],
        'invalid value: add and replace require a value',
      ],
      [
        'replace with an empty value',
        [{ op: 'replace', path: '/m1/metadata/role', value: { value: '' } }],
        'invalid value: add and replace require a value',
      ],
      [
        'a machine ID with a NUL',
        [{ op: 'add', path: '/no-such-machine\u0000/metadata/role', value: 'x' }],
        'operation 0: machine ID "no-such-machine\\u0000" has characters other than letters, digits and ._:- (or starts with one of ._:-)',
      ],
      [
        'a value with a newline',
        [
          { op: 'remove', path: '/m1/metadata/a' },
          { op: 'add', path: '/m1/metadata/role', value: 'web\nrole=db' },
        ],
        'operation 1: metadata value "web\\nrole=db" has a control character',
      ],
      [
        'a value with an escape sequence',
        [{ op: 'add', path: '/m1/metadata/role', value: '\u001b]0;owned\u0007' }],
        'operation 0: metadata value "\\u001b]0;owned\\u0007" has a control character',
      ],
      [
        'a key over 253 characters',
        [{ op: 'add', path: `/m1/metadata/${'k'.repeat(254)}`, value: 'x' }],
        'operation 0: metadata key is longer than 253 characters',
      ],
      [
        'a value over 1024 characters',
        [{ op: 'add', path: '/m1/metadata/k', value: 'v'.repeat(1025) }],
        'operation 0: metadata value is longer than 1024 characters',
      ],
      [
        'an object body',
        { op: 'add' },
        'unable to decode body: expected the body to be a JSON array of operations, got object',
      ],
      ['an empty body', '', 'unable to decode body: EOF'],
      [
        'an unknown field',
        [{ op: 'add', path: '/m1/metadata/a', value: 'x', from: '/x' }],
        'unable to decode body: unknown field "[0].from"',
      ],
      [
        'a number value',
        [{ op: 'add', path: '/m1/metadata/a', value: 3 }],
        'unable to decode body: field "[0].value" must be a string or {"value": string}, got number',
      ],
      [
        'an unknown field in the value object',
        [{ op: 'add', path: '/m1/metadata/a', value: { value: 'x', type: 's' } }],
        'unable to decode body: unknown field "[0].value.type"',
      ],
    ];
    for (const [label, body, message] of invalid) {
      it(`answers ${label} with 400 "${message.slice(0, 80)}" and changes nothing`, async () => {
        await scope.api.seed.machine(machineRecord('m1'));
        const res = await patch(body);
        expect(res.status).to.equal(400);
        expect(res.body).to.equal(errorJson(400, message));
        expect(await metadataOf('m1')).to.deep.equal({});
      });
    }

    it('validates every operation before applying any', async () => {
      await scope.api.seed.machine(machineRecord('m1'));
      const res = await patch([
        { op: 'add', path: '/m1/metadata/role', value: 'web' },
        { op: 'add', path: '/m1/metadata/bad key', value: 'x' },
      ]);
      expect(res.status).to.equal(400);
      expect(await metadataOf('m1')).to.deep.equal({});
    });
  });
}

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

    it('accepts an unknown machine ID and an empty list', async () => {
      expect((await patch([{ op: 'add', path: '/nobody/metadata/role', value: 'web' }])).status).to.equal(
        204,
      );
      expect((await patch([])).status).to.equal(204);
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
      it(`answers ${label} with 400 "${message}"`, async () => {
        const res = await patch(body);
        expect(res.status).to.equal(400);
        expect(res.body).to.equal(errorJson(400, message));
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

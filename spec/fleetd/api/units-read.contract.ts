import { expect } from 'chai';
import { describe, it } from 'mocha';
import { errorJson, type ContractScope } from './api-harness.js';

interface UnitJson {
  name: string;
  desiredState?: string;
  currentState?: string;
  machineID?: string;
  unplaceableReason?: string;
  options?: { section: string; name: string; value?: string }[];
}

/** `GET /units` and `GET /units/<name>`: entities, derived states, extension, pagination. */
export function unitsReadContract(scope: ContractScope): void {
  describe('GET /units', () => {
    it('serializes an empty collection as {}', async () => {
      const res = await scope.api.request('GET', '/fleet/v1/units');
      expect(res.status).to.equal(200);
      expect(res.headers['content-type']).to.equal('application/json');
      expect(res.body).to.equal('{}');
    });

    it('lists units by name with keys in alphabetical order and empty fields omitted', async () => {
      await scope.api.seed.unit('b.service', { desired: 'loaded' });
      await scope.api.seed.unit('a.service');
      const res = await scope.api.request('GET', '/fleet/v1/units?alt=json');
      expect(res.status).to.equal(200);
      const option = '{"name":"ExecStart","section":"Service","value":"/bin/sleep infinity"}';
      expect(res.body).to.equal(
        '{"units":[' +
          `{"currentState":"inactive","desiredState":"inactive","name":"a.service","options":[${option}]},` +
          `{"currentState":"inactive","desiredState":"loaded","name":"b.service","options":[${option}]}` +
          ']}',
      );
    });

    it('derives currentState from the placement and the scheduled machine report', async () => {
      const seed = scope.api.seed;
      const placedOnly = await seed.unit('placed.service', { desired: 'launched' });
      await seed.place(placedOnly, 'm1');
      const loaded = await seed.unit('loaded.service', { desired: 'loaded' });
      await seed.place(loaded, 'm1', 'loaded');
      await seed.report('loaded.service', 'm1', {
        launched: false,
        activeState: 'inactive',
        subState: 'dead',
      });
      const launched = await seed.unit('launched.service', { desired: 'launched' });
      await seed.place(launched, 'm2');
      await seed.report('launched.service', 'm2');
      const elsewhere = await seed.unit('elsewhere.service', { desired: 'launched' });
      await seed.place(elsewhere, 'm1');
      await seed.report('elsewhere.service', 'm2');
      await seed.unit('idle.service');

      const res = await scope.api.request('GET', '/fleet/v1/units');
      const units = (res.json() as { units: UnitJson[] }).units;
      const summary = units.map((u) => [u.name, u.currentState, u.machineID]);
      expect(summary).to.deep.equal([
        ['elsewhere.service', 'inactive', 'm1'],
        ['idle.service', 'inactive', undefined],
        ['launched.service', 'launched', 'm2'],
        ['loaded.service', 'loaded', 'm1'],
        ['placed.service', 'inactive', 'm1'],
      ]);
    });

    it('shows global units with currentState inactive and no machineID', async () => {
      await scope.api.seed.unit('g.service', { fleet: ['Global=true'], desired: 'launched' });
      await scope.api.seed.report('g.service', 'm1');
      const res = await scope.api.request('GET', '/fleet/v1/units');
      const [unit] = (res.json() as { units: UnitJson[] }).units;
      expect(unit).to.include({ name: 'g.service', currentState: 'inactive', desiredState: 'launched' });
      expect(unit).not.to.have.property('machineID');
    });

    it('shows why the engine cannot place a unit (unplaceableReason)', async () => {
      await scope.api.seed.unit('stuck.service', { fleet: ['MachineMetadata=role=db'], desired: 'launched' });
      await scope.api.seed.unit('fine.service');
      await scope.api.seed.unplaceable('stuck.service', 'no machine has metadata role=db');
      const res = await scope.api.request('GET', '/fleet/v1/units');
      const units = (res.json() as { units: UnitJson[] }).units;
      expect(units.map((u) => [u.name, u.unplaceableReason])).to.deep.equal([
        ['fine.service', undefined],
        ['stuck.service', 'no machine has metadata role=db'],
      ]);
    });

    it('omits an option value that is empty, as fleet did', async () => {
      const record = await scope.api.seed.unit('reset.service', { exec: '' });
      expect(record.options.map((o) => o.value)).to.deep.equal(['']);
      const res = await scope.api.request('GET', '/fleet/v1/units/reset.service');
      expect(res.body).to.contain('"options":[{"name":"ExecStart","section":"Service"}]');
    });
  });

  describe('GET /units pagination', () => {
    async function names(
      path: string,
      api = scope.api,
    ): Promise<{ names: string[]; token?: string; body: string }> {
      const res = await api.request('GET', path);
      expect(res.status, res.body).to.equal(200);
      const page = res.json() as { units?: UnitJson[]; nextPageToken?: string };
      return { names: (page.units ?? []).map((u) => u.name), token: page.nextPageToken, body: res.body };
    }

    it('pages with tokens of the server limit and no empty page after an exact multiple', async () => {
      const api = await scope.open({ tokenLimit: 2 });
      for (const n of ['d', 'a', 'c', 'b']) await api.seed.unit(`${n}.service`);
      const first = await names('/fleet/v1/units', api);
      expect(first).to.include({ token: 'AgACAA==' });
      expect(first.names).to.deep.equal(['a.service', 'b.service']);
      const second = await names(`/fleet/v1/units?nextPageToken=${first.token!}&alt=json`, api);
      expect(second.names).to.deep.equal(['c.service', 'd.service']);
      expect(second.token).to.equal(undefined);
    });

    it('serves the last, partial page without a token', async () => {
      const api = await scope.open({ tokenLimit: 2 });
      for (const n of ['a', 'b', 'c']) await api.seed.unit(`${n}.service`);
      const second = await names('/fleet/v1/units?nextPageToken=AgACAA==', api);
      expect(second.names).to.deep.equal(['c.service']);
      expect(second.token).to.equal(undefined);
    });

    it('answers a page past the end with {}', async () => {
      const api = await scope.open({ tokenLimit: 2 });
      await api.seed.unit('a.service');
      expect((await names('/fleet/v1/units?nextPageToken=AgAJAA==', api)).body).to.equal('{}');
    });

    it('accepts fleet default token for page 1 with the default limit', async () => {
      await scope.api.seed.unit('a.service');
      expect((await names('/fleet/v1/units?nextPageToken=ZAABAA==')).names).to.deep.equal(['a.service']);
    });

    const badTokens: [string, string][] = [
      ['nextPageToken=ZAABAA==&nextPageToken=ZAACAA==', 'too many values for page token'],
      ['nextPageToken=ZAABA', 'illegal base64 data at input byte 4'],
      ['nextPageToken=Z%21AB', 'illegal base64 data at input byte 1'],
      ['nextPageToken=ZAABAA=', 'illegal base64 data at input byte 7'],
      ['nextPageToken=', 'EOF'],
      ['nextPageToken=ZAA=', 'unexpected EOF'],
      ['nextPageToken=wjAAAA==', 'token limit must be 100'],
      ['nextPageToken=ZAAAAA==', 'token page must be greater than zero'],
    ];
    for (const [query, message] of badTokens) {
      it(`answers ?${query} with 400 "${message}"`, async () => {
        const res = await scope.api.request('GET', `/fleet/v1/units?${query}`);
        expect(res.status).to.equal(400);
        expect(res.body).to.equal(errorJson(400, message));
      });
    }
  });

  describe('GET /units/<name>', () => {
    it('answers an unknown unit with 404 "unit does not exist"', async () => {
      const res = await scope.api.request('GET', '/fleet/v1/units/nope.service');
      expect(res.status).to.equal(404);
      expect(res.body).to.equal(errorJson(404, 'unit does not exist'));
    });

    it('returns the unit with its derived state, machine and options in canonical order', async () => {
      const seed = scope.api.seed;
      const unit = await seed.unit('web.service', { fleet: ['Conflicts=db*'], desired: 'launched' });
      await seed.place(unit, 'm1');
      await seed.report('web.service', 'm1');
      const res = await scope.api.request('GET', '/fleet/v1/units/web.service?alt=json');
      expect(res.status).to.equal(200);
      expect(res.headers['content-type']).to.equal('application/json');
      expect(res.body).to.equal(
        '{"currentState":"launched","desiredState":"launched","machineID":"m1","name":"web.service","options":[' +
          '{"name":"ExecStart","section":"Service","value":"/bin/sleep infinity"},' +
          '{"name":"Conflicts","section":"X-Fleet","value":"db*"}]}',
      );
    });

    it('shows a global unit without currentState or machineID, as fleet did', async () => {
      await scope.api.seed.unit('g.service', { fleet: ['Global=true'], desired: 'launched' });
      await scope.api.seed.report('g.service', 'm1');
      const unit = (await scope.api.request('GET', '/fleet/v1/units/g.service')).json() as UnitJson;
      expect(unit).to.include({ name: 'g.service', desiredState: 'launched' });
      expect(unit).not.to.have.any.keys('currentState', 'machineID');
    });

    it('shows unplaceableReason when the engine recorded one, and omits it otherwise', async () => {
      await scope.api.seed.unit('stuck.service', { desired: 'launched' });
      const before = (await scope.api.request('GET', '/fleet/v1/units/stuck.service')).json() as UnitJson;
      expect(before).not.to.have.property('unplaceableReason');
      await scope.api.seed.unplaceable('stuck.service', 'conflicts with web.service on every machine');
      const after = (await scope.api.request('GET', '/fleet/v1/units/stuck.service')).json() as UnitJson;
      expect(after.unplaceableReason).to.equal('conflicts with web.service on every machine');
    });
  });
}

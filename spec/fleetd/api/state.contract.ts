import { expect } from 'chai';
import { describe, it } from 'mocha';
import { errorJson, type ContractScope } from './api-harness.js';

interface StateJson {
  name: string;
  machineID: string;
}

/** `GET /state` and `GET /state/<name>`. */
export function stateContract(scope: ContractScope): void {
  async function seedStates(): Promise<void> {
    const seed = scope.api.seed;
    await seed.report('web.service', 'm2', { hash: 'h2', activeState: 'failed', subState: 'failed' });
    await seed.report('web.service', 'm1', { hash: 'h1' });
    await seed.report('db.service', 'm2', {
      hash: 'h3',
      loadState: 'loaded',
      activeState: 'inactive',
      subState: 'dead',
    });
  }

  async function listed(path: string): Promise<string[]> {
    const res = await scope.api.request('GET', path);
    expect(res.status, res.body).to.equal(200);
    return ((res.json() as { states?: StateJson[] }).states ?? []).map((s) => `${s.name}@${s.machineID}`);
  }

  describe('GET /state', () => {
    it('serializes no states as {}', async () => {
      const res = await scope.api.request('GET', '/fleet/v1/state');
      expect(res.status).to.equal(200);
      expect(res.body).to.equal('{}');
    });

    it('lists states by unit then machine, keys in alphabetical order', async () => {
      await seedStates();
      const res = await scope.api.request('GET', '/fleet/v1/state?alt=json');
      expect(res.headers['content-type']).to.equal('application/json');
      expect(res.body).to.equal(
        '{"states":[' +
          '{"hash":"h3","machineID":"m2","name":"db.service","systemdActiveState":"inactive","systemdLoadState":"loaded","systemdSubState":"dead"},' +
          '{"hash":"h1","machineID":"m1","name":"web.service","systemdActiveState":"active","systemdLoadState":"loaded","systemdSubState":"running"},' +
          '{"hash":"h2","machineID":"m2","name":"web.service","systemdActiveState":"failed","systemdLoadState":"loaded","systemdSubState":"failed"}' +
          ']}',
      );
    });

    const filters: [string, string[]][] = [
      ['machineID=m2', ['db.service@m2', 'web.service@m2']],
      ['unitName=web.service', ['web.service@m1', 'web.service@m2']],
      ['machineID=m2&unitName=web.service', ['web.service@m2']],
      ['machineID=m1&machineID=m2', ['web.service@m1']],
      ['machineID=&unitName=', ['db.service@m2', 'web.service@m1', 'web.service@m2']],
      ['unitName=nope.service', []],
    ];
    for (const [query, expected] of filters) {
      it(`filters by exact match with ?${query}`, async () => {
        await seedStates();
        expect(await listed(`/fleet/v1/state?${query}`)).to.deep.equal(expected);
      });
    }

    it('pages states with the server token limit', async () => {
      const api = await scope.open({ tokenLimit: 2 });
      await api.seed.report('a.service', 'm1');
      await api.seed.report('b.service', 'm1');
      await api.seed.report('c.service', 'm1');
      const first = (await api.request('GET', '/fleet/v1/state')).json() as {
        states: StateJson[];
        nextPageToken: string;
      };
      expect(first.states.map((s) => s.name)).to.deep.equal(['a.service', 'b.service']);
      expect(first.nextPageToken).to.equal('AgACAA==');
      const second = (
        await api.request('GET', `/fleet/v1/state?nextPageToken=${first.nextPageToken}`)
      ).json();
      expect(second).to.deep.equal({
        states: [
          {
            hash: 'h',
            machineID: 'm1',
            name: 'c.service',
            systemdActiveState: 'active',
            systemdLoadState: 'loaded',
            systemdSubState: 'running',
          },
        ],
      });
    });

    it('answers a bad page token with 400', async () => {
      const res = await scope.api.request('GET', '/fleet/v1/state?nextPageToken=AgACAA==');
      expect(res.status).to.equal(400);
      expect(res.body).to.equal(errorJson(400, 'token limit must be 100'));
    });
  });

  describe('GET /state/<name>', () => {
    it('returns the first state of the unit (lowest machine ID)', async () => {
      await seedStates();
      const res = await scope.api.request('GET', '/fleet/v1/state/web.service?alt=json');
      expect(res.status).to.equal(200);
      expect(res.body).to.equal(
        '{"hash":"h1","machineID":"m1","name":"web.service","systemdActiveState":"active","systemdLoadState":"loaded","systemdSubState":"running"}',
      );
    });

    it('answers a unit without state with 404 "unit state does not exist" (fleet dropped the connection)', async () => {
      await scope.api.seed.unit('web.service');
      const res = await scope.api.request('GET', '/fleet/v1/state/web.service');
      expect(res.status).to.equal(404);
      expect(res.body).to.equal(errorJson(404, 'unit state does not exist'));
    });
  });
}

import { expect } from 'chai';
import { describe, it } from 'mocha';
import { unitRecord } from '../../helpers/registry-builders.js';
import { JSON_HEADERS, errorJson, type ApiSubject, type ContractScope } from './api-harness.js';

const SLEEP = [{ section: 'Service', name: 'ExecStart', value: '/bin/sleep infinity' }];
const OTHER = [{ section: 'Service', name: 'ExecStart', value: '/bin/sleep 60' }];

/** `PUT` and `DELETE /units/<name>`. */
export function unitsWriteContract(scope: ContractScope): void {
  function put(name: string, body: unknown, api: ApiSubject = scope.api) {
    return api.request('PUT', `/fleet/v1/units/${name}?alt=json`, {
      headers: JSON_HEADERS,
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  }

  async function expectError(
    reply: Promise<{ status: number; body: string }>,
    status: number,
    message: string,
  ): Promise<void> {
    const res = await reply;
    expect(res.status, res.body).to.equal(status);
    expect(res.body).to.equal(errorJson(status, message));
  }

  describe('PUT /units/<name>: create', () => {
    it('creates an inactive unit: 201 without a body, options stored in canonical order', async () => {
      const res = await put('web.service', {
        name: 'web.service',
        options: [
          { section: 'X-Fleet', name: 'Conflicts', value: 'db*' },
          { section: 'Service', name: 'ExecStart', value: '/bin/sleep infinity' },
          { section: 'X-Fleet', name: 'MachineMetadata', value: 'role=web' },
        ],
      });
      expect(res.status).to.equal(201);
      expect(res.body).to.equal('');
      expect(res.headers).not.to.have.property('content-type');
      const stored = await scope.api.registry.getUnit('web.service');
      expect(stored?.desiredState).to.equal('inactive');
      expect(stored?.unit.options.map((o) => `${o.section}.${o.name}`)).to.deep.equal([
        'X-Fleet.Conflicts',
        'X-Fleet.MachineMetadata',
        'Service.ExecStart',
      ]);
      expect(stored?.unit.fleet.machineMetadata).to.deep.equal([{ key: 'role', values: ['web'] }]);
    });

    it('creates a unit with the desired state of the body', async () => {
      expect((await put('web.service', { options: SLEEP, desiredState: 'launched' })).status).to.equal(201);
      expect((await scope.api.registry.getUnit('web.service'))?.desiredState).to.equal('launched');
    });

    it('takes the name from the URL when the body has none', async () => {
      expect((await put('web.service', { options: SLEEP })).status).to.equal(201);
      expect((await scope.api.registry.getUnit('web.service'))?.unit.hash).to.equal(
        unitRecord('web.service').hash,
      );
    });

    it('answers a unit without options with 409', async () => {
      await expectError(
        put('web.service', { name: 'web.service' }),
        409,
        'unit does not exist and options field empty',
      );
      await expectError(
        put('web.service', { desiredState: 'launched', options: [] }),
        409,
        'unit does not exist and options field empty',
      );
      expect(await scope.api.registry.getUnit('web.service')).to.equal(undefined);
    });

    it('answers invalid options with 400 listing every problem, and stores nothing', async () => {
      await expectError(
        put('web.service', {
          options: [
            ...SLEEP,
            { section: 'X-Fleet', name: 'MachineOf', value: '' },
            { section: 'X-Fleet', name: 'Global', value: 'maybe' },
          ],
        }),
        400,
        'web.service: [X-Fleet] MachineOf: needs a unit name, got ""; ' +
          'web.service: [X-Fleet] Global: expected a boolean (yes/no, true/false, on/off, 1/0), got "maybe"',
      );
      expect(await scope.api.registry.getUnit('web.service')).to.equal(undefined);
    });

    it('answers an invalid desiredState on create with 400, not fleet 500', async () => {
      await expectError(
        put('web.service', { options: SLEEP, desiredState: 'bogus' }),
        400,
        'invalid value "bogus" for JobState',
      );
      expect(await scope.api.registry.getUnit('web.service')).to.equal(undefined);
    });

    it('creates a template inactive but refuses to create it active', async () => {
      await expectError(
        put('hello@.service', { options: SLEEP, desiredState: 'launched' }),
        400,
        'cannot activate template "hello@.service"',
      );
      expect((await put('hello@.service', { options: SLEEP })).status).to.equal(201);
      expect((await put('hello@1.service', { options: SLEEP, desiredState: 'launched' })).status).to.equal(
        201,
      );
    });
  });

  describe('PUT /units/<name>: checks before anything else', () => {
    const contentTypes: [string, Record<string, string | string[]>, string][] = [
      ['no Content-Type', {}, 'expected 1 Content-Type, got 0'],
      [
        'two Content-Types',
        { 'Content-Type': ['application/json', 'application/json'] },
        'expected 1 Content-Type, got 2',
      ],
      ['text/plain', { 'Content-Type': 'text/plain' }, 'only acceptable Content-Type is application/json'],
      [
        'application/jsonx',
        { 'Content-Type': 'application/jsonx' },
        'only acceptable Content-Type is application/json',
      ],
    ];
    for (const [label, headers, message] of contentTypes) {
      it(`answers ${label} with 415`, async () => {
        const res = await scope.api.request('PUT', '/fleet/v1/units/web.service', {
          headers,
          body: JSON.stringify({ options: SLEEP }),
        });
        expect(res.status).to.equal(415);
        expect(res.body).to.equal(errorJson(415, message));
      });
    }

    it('accepts application/json with parameters, in any case', async () => {
      const res = await scope.api.request('PUT', '/fleet/v1/units/web.service', {
        headers: { 'Content-Type': ' Application/JSON ; charset=utf-8' },
        body: JSON.stringify({ options: SLEEP }),
      });
      expect(res.status).to.equal(201);
    });

    const badBodies: [string, string, string][] = [
      ['an empty body', '', 'unable to decode body: EOF'],
      ['an array', '[]', 'unable to decode body: expected the body to be a JSON object, got array'],
      ['an unknown field', '{"options":[],"replace":true}', 'unable to decode body: unknown field "replace"'],
      [
        'an unknown option field',
        '{"options":[{"section":"Service","name":"A","value":"b","line":3}]}',
        'unable to decode body: unknown field "options[0].line"',
      ],
      ['a number for name', '{"name":5}', 'unable to decode body: field "name" must be a string, got number'],
      [
        'an object for options',
        '{"options":{}}',
        'unable to decode body: field "options" must be an array, got object',
      ],
      [
        'a number for an option value',
        '{"options":[{"section":"Service","name":"A","value":1}]}',
        'unable to decode body: field "options[0].value" must be a string, got number',
      ],
      [
        'a string option',
        '{"options":["x"]}',
        'unable to decode body: expected options[0] to be a JSON object, got string',
      ],
    ];
    for (const [label, body, message] of badBodies) {
      it(`answers ${label} with 400`, async () => {
        await expectError(put('web.service', body), 400, message);
      });
    }

    it('answers malformed JSON with 400 "unable to decode body: ..."', async () => {
      const res = await put('web.service', '{"options": [');
      expect(res.status).to.equal(400);
      const { error } = res.json() as { error: { code: number; message: string } };
      expect(error.code).to.equal(400);
      expect(error.message).to.match(/^unable to decode body: ./);
    });

    it('answers a body with invalid UTF-8 with 400 naming the byte, and stores nothing (fleet stored U+FFFD)', async () => {
      const json = Buffer.from(
        '{"options":[{"section":"Service","name":"ExecStart","value":"/bin/echo X"}]}',
      );
      const body = Buffer.from(json);
      body[json.indexOf('X')] = 0xff;
      const res = await scope.api.request('PUT', '/fleet/v1/units/web.service', {
        headers: JSON_HEADERS,
        body,
      });
      expect(res.body).to.equal(
        errorJson(400, `unable to decode body: invalid UTF-8 at byte ${json.indexOf('X')}`),
      );
      expect(await scope.api.registry.getUnit('web.service')).to.equal(undefined);
    });

    it('answers an overlong UTF-8 encoding and a lone surrogate escape with 400, storing nothing', async () => {
      const overlong = Buffer.concat([
        Buffer.from('{"options":[{"section":"Service","name":"ExecStart","value":"/bin/echo '),
        Buffer.from([0xc0, 0xaf]),
        Buffer.from('"}]}'),
      ]);
      const first = await scope.api.request('PUT', '/fleet/v1/units/web.service', {
        headers: JSON_HEADERS,
        body: overlong,
      });
      expect(first.status, first.body).to.equal(400);
      const lone = await put(
        'web.service',
        '{"options":[{"section":"Service","name":"ExecStart","value":"/bin/echo \\ud800"}]}',
      );
      expect(lone.status, lone.body).to.equal(400);
      expect(lone.body).to.contain('lone UTF-16 surrogate');
      expect(await scope.api.registry.getUnit('web.service')).to.equal(undefined);
      const paired = await put(
        'web.service',
        '{"options":[{"section":"Service","name":"ExecStart","value":"/bin/echo \\ud83d\\ude00"}]}',
      );
      expect(paired.status, paired.body).to.equal(201);
    });

    it('matches body fields case-insensitively, as Go did', async () => {
      const res = await put('web.service', {
        Name: 'web.service',
        DESIREDSTATE: 'loaded',
        Options: [{ Section: 'Service', NAME: 'ExecStart', value: '/bin/sleep infinity' }],
      });
      expect(res.status).to.equal(201);
      expect((await scope.api.registry.getUnit('web.service'))?.desiredState).to.equal('loaded');
    });

    it('accepts and ignores the read-only fields of the entity', async () => {
      const res = await put('web.service', {
        options: SLEEP,
        currentState: 'launched',
        machineID: 'm1',
        unplaceableReason: 'x',
      });
      expect(res.status).to.equal(201);
    });

    it('answers a name differing from the URL with 400', async () => {
      await expectError(
        put('web.service', { name: 'db.service', options: SLEEP }),
        400,
        'name in URL "web.service" differs from unit name in request body "db.service"',
      );
    });

    const badNames: [string, string][] = [
      ['noext', 'unit name must contain "."'],
      ['foo.', 'unit name cannot end in "."'],
      ['foo.bar', 'invalid unit type: "bar"'],
      ['foo@1.mount', 'invalid unit type for template: "mount"'],
      ['this+that.mount', "invalid character '+' in unit name"],
      ['@foo.service', 'unit name cannot start in "@"'],
      [
        `${'a'.repeat(250)}.service`,
        "unit name exceeds maximum length (237 bytes: systemd's 255 less 18 for the agent's temporary file name), got 258",
      ],
      // Names fleet accepted and systemd refuses: each would fail on every agent, every round.
      ['.service', 'unit name needs a name before ".service"'],
      ['x.busname', 'invalid unit type: "busname"'],
      ['x.snapshot', 'invalid unit type: "snapshot"'],
      [
        `${'a'.repeat(248)}.service`,
        "unit name exceeds maximum length (237 bytes: systemd's 255 less 18 for the agent's temporary file name), got 256",
      ],
      [
        `${'a'.repeat(230)}.service`,
        "unit name exceeds maximum length (237 bytes: systemd's 255 less 18 for the agent's temporary file name), got 238",
      ],
    ];
    for (const [name, message] of badNames) {
      const label = name.length > 40 ? `of ${name.length} bytes` : name;
      it(`answers the name ${label} with 400 "${message}" and stores nothing`, async () => {
        await expectError(
          put(encodeURIComponent(name), { options: SLEEP, desiredState: 'launched' }),
          400,
          message,
        );
        expect(await scope.api.registry.listUnits()).to.deep.equal([]);
      });
    }

    it('accepts a name of 237 bytes, the longest whose temporary file name fits', async () => {
      const name = `${'a'.repeat(229)}.service`;
      const res = await put(name, { options: SLEEP, desiredState: 'launched' });
      expect(res.status).to.equal(201);
    });

    it('answers a body over the size limit with 413 and closes the connection', async () => {
      const api = await scope.open({ maxBodyBytes: 512 });
      const big = JSON.stringify({
        options: [{ section: 'Service', name: 'ExecStart', value: 'x'.repeat(4096) }],
      });
      const res = await put('web.service', big, api);
      expect(res.status).to.equal(413);
      expect(res.headers.connection).to.equal('close');
      expect(res.body).to.equal(errorJson(413, 'request body exceeds the limit of 512 bytes'));
      expect(await api.registry.getUnit('web.service')).to.equal(undefined);
    });

    it('answers a chunked body that grows over the limit with 413', async () => {
      const api = await scope.open({ maxBodyBytes: 512 });
      const big = JSON.stringify({
        options: [{ section: 'Service', name: 'ExecStart', value: 'x'.repeat(4096) }],
      });
      const res = await api.request('PUT', '/fleet/v1/units/web.service', {
        headers: JSON_HEADERS,
        body: big,
        chunked: true,
      });
      expect(res.status).to.equal(413);
    });
  });

  describe('PUT /units/<name>: update and replace', () => {
    it('sets the desired state of an existing unit: 204 without a body', async () => {
      await scope.api.seed.unit('web.service');
      const res = await put('web.service', { name: 'web.service', desiredState: 'launched' });
      expect(res.status).to.equal(204);
      expect(res.body).to.equal('');
      expect((await scope.api.registry.getUnit('web.service'))?.desiredState).to.equal('launched');
    });

    it('answers an update without desiredState with 409', async () => {
      await scope.api.seed.unit('web.service');
      await expectError(
        put('web.service', { name: 'web.service' }),
        409,
        'must provide DesiredState to update existing unit',
      );
    });

    it('answers an invalid desiredState on update with 400 and leaves the unit intact (fleet stored it)', async () => {
      await scope.api.seed.unit('web.service', { desired: 'loaded' });
      await expectError(
        put('web.service', { desiredState: 'bogus' }),
        400,
        'invalid value "bogus" for JobState',
      );
      await expectError(
        put('web.service', { desiredState: 'Launched' }),
        400,
        'invalid value "Launched" for JobState',
      );
      const res = await scope.api.request('GET', '/fleet/v1/units/web.service');
      expect(res.status).to.equal(200);
      expect((res.json() as { desiredState: string }).desiredState).to.equal('loaded');
      expect((await scope.api.request('DELETE', '/fleet/v1/units/web.service')).status).to.equal(204);
    });

    it('refuses to activate a template, but lets it be set inactive', async () => {
      await scope.api.seed.unit('hello@.service');
      for (const state of ['loaded', 'launched']) {
        await expectError(
          put('hello@.service', { desiredState: state }),
          400,
          'cannot activate template "hello@.service"',
        );
      }
      expect((await put('hello@.service', { desiredState: 'inactive' })).status).to.equal(204);
    });

    it('treats the same options with a desiredState as an update (204)', async () => {
      await scope.api.seed.unit('web.service');
      const res = await put('web.service', { options: SLEEP, desiredState: 'loaded' });
      expect(res.status).to.equal(204);
      expect((await scope.api.registry.getUnit('web.service'))?.desiredState).to.equal('loaded');
    });

    it('answers the same options without a desiredState with 409', async () => {
      await scope.api.seed.unit('web.service');
      await expectError(
        put('web.service', { options: SLEEP }),
        409,
        'must provide DesiredState to update existing unit',
      );
    });

    it('replaces a unit with different options (201), resetting it to inactive and keeping its placement', async () => {
      const old = await scope.api.seed.unit('web.service', { desired: 'launched' });
      await scope.api.seed.place(old, 'm1');
      const res = await put('web.service', { name: 'web.service', options: OTHER });
      expect(res.status).to.equal(201);
      const stored = await scope.api.registry.getUnit('web.service');
      expect(stored?.desiredState).to.equal('inactive');
      expect(stored?.unit.hash).to.equal(unitRecord('web.service', [], '/bin/sleep 60').hash);
      const unit = (await scope.api.request('GET', '/fleet/v1/units/web.service')).json() as {
        machineID?: string;
        options: { value: string }[];
      };
      expect(unit.machineID).to.equal('m1');
      expect(unit.options.map((o) => o.value)).to.deep.equal(['/bin/sleep 60']);
    });

    it('replaces a unit with the desiredState of the body', async () => {
      await scope.api.seed.unit('web.service', { desired: 'launched' });
      expect((await put('web.service', { options: OTHER, desiredState: 'loaded' })).status).to.equal(201);
      expect((await scope.api.registry.getUnit('web.service'))?.desiredState).to.equal('loaded');
    });

    it('validates options on replace too (fleet skipped it) and keeps the old unit', async () => {
      const old = await scope.api.seed.unit('web.service', { desired: 'launched' });
      await expectError(
        put('web.service', { options: [...OTHER, { section: 'X-Fleet', name: 'Global', value: 'maybe' }] }),
        400,
        'web.service: [X-Fleet] Global: expected a boolean (yes/no, true/false, on/off, 1/0), got "maybe"',
      );
      const stored = await scope.api.registry.getUnit('web.service');
      expect(stored).to.deep.equal({ unit: old, desiredState: 'launched' });
    });
  });

  describe('DELETE /units/<name>', () => {
    it('destroys a unit: 204 without a body or Content-Type', async () => {
      const unit = await scope.api.seed.unit('web.service', { desired: 'launched' });
      await scope.api.seed.place(unit, 'm1');
      await scope.api.seed.report('web.service', 'm1');
      const res = await scope.api.request('DELETE', '/fleet/v1/units/web.service?alt=json');
      expect(res.status).to.equal(204);
      expect(res.body).to.equal('');
      expect(res.headers).not.to.have.property('content-type');
      expect((await scope.api.request('GET', '/fleet/v1/units/web.service')).status).to.equal(404);
      expect(await scope.api.registry.getPlacement('web.service')).to.equal(undefined);
    });

    it('answers an unknown unit with 404 "unit does not exist"', async () => {
      await expectError(
        scope.api.request('DELETE', '/fleet/v1/units/nope.service'),
        404,
        'unit does not exist',
      );
    });
  });
}

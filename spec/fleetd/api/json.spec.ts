import { expect } from 'chai';
import { describe, it } from 'mocha';
import { FleetError } from '../../../lib/errors.js';
import { ApiError, classifyFailure, errorBody } from '../../../fleetd/api/errors.js';
import { encodeEntity, parseJsonBody, readFields } from '../../../fleetd/api/json.js';

describe('fleetd/api json', () => {
  describe('encodeEntity', () => {
    it('sorts keys alphabetically at every level', () => {
      expect(encodeEntity({ z: 'a', b: { y: 'c', a: 'd' } })).to.equal('{"b":{"a":"d","y":"c"},"z":"a"}');
    });

    it('omits empty strings, zero numbers, false, null, undefined, empty arrays and empty objects', () => {
      expect(
        encodeEntity({
          s: '',
          n: 0,
          f: false,
          nil: null,
          u: undefined,
          a: [],
          o: {},
          nested: { e: '' },
          kept: 'x',
        }),
      ).to.equal('{"kept":"x"}');
    });

    it('keeps array elements, even empty ones', () => {
      expect(encodeEntity({ options: [{ name: 'A', value: '' }, {}] })).to.equal(
        '{"options":[{"name":"A"},{}]}',
      );
    });

    it('serializes an entity with nothing in it as {}', () => {
      expect(encodeEntity({ units: [], nextPageToken: undefined })).to.equal('{}');
    });

    it('escapes <, >, &, U+2028 and U+2029 as Go json.Marshal does', () => {
      expect(encodeEntity({ v: 'a && b <c> \u2028\u2029' })).to.equal(
        '{"v":"a \\u0026\\u0026 b \\u003cc\\u003e \\u2028\\u2029"}',
      );
      expect(JSON.parse(encodeEntity({ v: 'a && b <c>' }))).to.deep.equal({ v: 'a && b <c>' });
    });
  });

  describe('errorBody', () => {
    it('writes fleet error entity byte for byte, keeping an empty message', () => {
      expect(errorBody(400, 'sentinel')).to.equal('{"error":{"code":400,"message":"sentinel"}}');
      expect(errorBody(400, '')).to.equal('{"error":{"code":400,"message":""}}');
    });
  });

  describe('classifyFailure', () => {
    it('maps a retryable REGISTRY_UNAVAILABLE to 503 with fleet etcd message', () => {
      const err = new FleetError('REGISTRY_UNAVAILABLE', 'etcd down', { retryable: true });
      expect(classifyFailure(err)).to.deep.equal({
        status: 503,
        message: 'fleet server unable to communicate with etcd',
      });
    });

    it('maps everything else to 500 with an empty message', () => {
      for (const err of [
        new FleetError('REGISTRY_UNAVAILABLE', 'closed'),
        new FleetError('REGISTRY_CORRUPT', 'bad value'),
        new TypeError('bug'),
        'thrown string',
      ]) {
        expect(classifyFailure(err)).to.deep.equal({ status: 500, message: '' });
      }
    });
  });

  describe('parseJsonBody and readFields', () => {
    function rejection(fn: () => unknown): string {
      try {
        fn();
      } catch (err) {
        if (err instanceof ApiError) return err.message;
        throw err;
      }
      throw new Error('expected an ApiError');
    }

    it('reports an empty or blank body as EOF', () => {
      expect(rejection(() => parseJsonBody(Buffer.from('')))).to.equal('unable to decode body: EOF');
      expect(rejection(() => parseJsonBody(Buffer.from(' \n')))).to.equal('unable to decode body: EOF');
    });

    it('prefers the exact field name, then matches case-insensitively, and rejects unknown fields', () => {
      expect(readFields({ Name: 'a', name: 'b' }, '', ['name'])).to.deep.equal({ name: 'b' });
      expect(readFields({ NAME: 'a' }, '', ['name'])).to.deep.equal({ name: 'a' });
      expect(rejection(() => readFields({ nam: 'a' }, 'x[1]', ['name']))).to.equal(
        'unable to decode body: unknown field "x[1].nam"',
      );
    });
  });
});

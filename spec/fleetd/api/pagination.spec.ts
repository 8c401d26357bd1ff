import { expect } from 'chai';
import { describe, it } from 'mocha';
import { ApiError } from '../../../fleetd/api/errors.js';
import {
  decodePageToken,
  encodePageToken,
  goBase64UrlDecode,
  pageFromQuery,
  paginate,
  type PageToken,
} from '../../../fleetd/api/pagination.js';

function rejection(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('expected an ApiError');
}

describe('fleetd/api pagination', () => {
  describe('page tokens', () => {
    const vectors: [PageToken, string][] = [
      [{ limit: 100, page: 1 }, 'ZAABAA=='],
      [{ limit: 100, page: 2 }, 'ZAACAA=='],
      [{ limit: 100, page: 3 }, 'ZAADAA=='],
      [{ limit: 12482, page: 0 }, 'wjAAAA=='],
      [{ limit: 19, page: 11852 }, 'EwBMLg=='],
      [{ limit: 65535, page: 65535 }, '_____w=='],
      [{ limit: 248, page: 1 }, '-AABAA=='],
    ];
    for (const [token, encoded] of vectors) {
      it(`encodes ${JSON.stringify(token)} as ${encoded} and back`, () => {
        expect(encodePageToken(token)).to.equal(encoded);
        expect(decodePageToken(encoded)).to.deep.equal(token);
      });
    }

    it('ignores bytes after the first four, as binary.Read did', () => {
      expect(decodePageToken('ZAACAAAA')).to.deep.equal({ limit: 100, page: 2 });
    });

    const goErrors: [string, string][] = [
      ['ZAABA', 'illegal base64 data at input byte 4'],
      ['ZAABAA=', 'illegal base64 data at input byte 7'],
      ['ZAABAA=x', 'illegal base64 data at input byte 6'],
      ['ZAABAA==x', 'illegal base64 data at input byte 8'],
      ['Z=AA', 'illegal base64 data at input byte 1'],
      ['=AAA', 'illegal base64 data at input byte 0'],
      ['ZA+B', 'illegal base64 data at input byte 2'],
      ['ZA/B', 'illegal base64 data at input byte 2'],
      ['ZAAB AA==', 'illegal base64 data at input byte 4'],
    ];
    for (const [input, message] of goErrors) {
      it(`reports ${JSON.stringify(input)} as Go did: ${message}`, () => {
        expect(goBase64UrlDecode(input)).to.equal(message);
        expect(rejection(() => decodePageToken(input))).to.include({ status: 400, message });
      });
    }

    it('skips newlines inside a token, as Go did', () => {
      expect(decodePageToken('ZAAB\nAA==\r\n')).to.deep.equal({ limit: 100, page: 1 });
    });

    it('reports a token of no bytes as EOF and of fewer than four as unexpected EOF', () => {
      expect(rejection(() => decodePageToken('')).message).to.equal('EOF');
      expect(rejection(() => decodePageToken('ZAA=')).message).to.equal('unexpected EOF');
      expect(rejection(() => decodePageToken('ZAAB')).message).to.equal('unexpected EOF');
    });
  });

  describe('pageFromQuery', () => {
    it('serves page 1 without a token', () => {
      expect(pageFromQuery(new URLSearchParams('alt=json'), 100)).to.deep.equal({ limit: 100, page: 1 });
    });

    it('takes the page of a valid token', () => {
      expect(pageFromQuery(new URLSearchParams('nextPageToken=ZAADAA%3D%3D'), 100)).to.deep.equal({
        limit: 100,
        page: 3,
      });
    });

    const errors: [string, number, string][] = [
      ['nextPageToken=ZAABAA==&nextPageToken=ZAABAA==', 100, 'too many values for page token'],
      ['nextPageToken=ZAABAA==', 2, 'token limit must be 2'],
      ['nextPageToken=ZAAAAA==', 100, 'token page must be greater than zero'],
    ];
    for (const [query, limit, message] of errors) {
      it(`answers ?${query} (limit ${limit}) with 400 "${message}"`, () => {
        expect(rejection(() => pageFromQuery(new URLSearchParams(query), limit))).to.include({
          status: 400,
          message,
        });
      });
    }
  });

  describe('paginate', () => {
    const items = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
    const cases: [string, number, number, number, number[], number | undefined][] = [
      ['an empty list', 0, 100, 1, [], undefined],
      ['a short list', 3, 100, 1, [0, 1, 2], undefined],
      ['an exact multiple, first page', 4, 2, 1, [0, 1], 2],
      ['an exact multiple, last page: no extra empty page (fleet quirk 9)', 4, 2, 2, [2, 3], undefined],
      ['a partial last page', 5, 2, 3, [4], undefined],
      ['a page past the end', 5, 2, 4, [], undefined],
      ['a far page without uint16 overflow', 3, 100, 700, [], undefined],
    ];
    for (const [label, total, limit, page, expected, next] of cases) {
      it(`cuts ${label}`, () => {
        const result = paginate(items(total), { limit, page });
        expect(result.items).to.deep.equal(expected);
        expect(result.nextPageToken).to.equal(
          next === undefined ? undefined : encodePageToken({ limit, page: next }),
        );
      });
    }

    it('returns no token when the next page number would not fit a token', () => {
      expect(paginate(items(3), { limit: 1, page: 65535 }).nextPageToken).to.equal(undefined);
    });
  });
});

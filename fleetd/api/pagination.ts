import { ApiError } from './errors.js';

/**
 * fleet's page tokens (`api/pagination.go`). A token is the base64url encoding, with `=`
 * padding, of 4 bytes: the little-endian uint16 page size ("limit") and the little-endian uint16
 * page number, counted from 1. With a limit of 100, page 1 is `ZAABAA==` and page 2 `ZAACAA==`.
 * The limit must equal the server's `token_limit`, so a token is only good for one server setting.
 *
 * Unlike fleet, which handed out a token whenever `page × limit <= total` and so served an extra,
 * empty page when the total was a multiple of the limit (docs/fleet-compat.md §12, quirk 9), a token is
 * returned only when more items follow. Page offsets are computed without fleet's uint16 overflow.
 */

/** A position in a paged listing. */
export interface PageToken {
  /** The page size, 1 to 65535. */
  readonly limit: number;
  /** The page number, 1 to 65535 (0 only in tokens that are then refused). */
  readonly page: number;
}

/** The largest value of a uint16 field of a token. */
const UINT16_MAX = 0xffff;

/** The default page size (fleet's `token_limit`). */
export const DEFAULT_TOKEN_LIMIT = 100;

/** Encodes a token the way fleet did: `{ limit: 100, page: 2 }` is `ZAACAA==`. */
export function encodePageToken(token: PageToken): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt16LE(token.limit & UINT16_MAX, 0);
  bytes.writeUInt16LE(token.page & UINT16_MAX, 2);
  // base64url keeps '=' padding in Go's URLEncoding; Node's 'base64url' drops it.
  return bytes.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

/**
 * Decodes a token with fleet's error messages: invalid base64 gives Go's
 * `illegal base64 data at input byte N`; fewer than 4 bytes give `EOF` (none) or `unexpected EOF`.
 * Bytes after the first 4 are ignored, as Go's `binary.Read` did.
 */
export function decodePageToken(value: string): PageToken {
  const bytes = goBase64UrlDecode(value);
  if (typeof bytes === 'string') throw new ApiError(400, bytes);
  if (bytes.length === 0) throw new ApiError(400, 'EOF');
  if (bytes.length < 4) throw new ApiError(400, 'unexpected EOF');
  return { limit: bytes.readUInt16LE(0), page: bytes.readUInt16LE(2) };
}

/**
 * The page a list request asks for: the `nextPageToken` query parameter, validated against the
 * server's `tokenLimit`, or page 1 when there is none. Errors are 400s with fleet's messages.
 */
export function pageFromQuery(query: URLSearchParams, tokenLimit: number): PageToken {
  const values = query.getAll('nextPageToken');
  if (values.length > 1) throw new ApiError(400, 'too many values for page token');
  const [value] = values;
  if (value === undefined) return { limit: tokenLimit, page: 1 };
  const token = decodePageToken(value);
  if (token.limit !== tokenLimit) throw new ApiError(400, `token limit must be ${tokenLimit}`);
  if (token.page === 0) throw new ApiError(400, 'token page must be greater than zero');
  return token;
}

/** One page of a listing, and the token of the next page when more items follow. */
export interface Page<T> {
  readonly items: T[];
  readonly nextPageToken: string | undefined;
}

/**
 * Cuts page `token.page` out of `all`. A page past the end is empty without a token; a token is
 * only returned when there are items after this page (and the next page number fits a token).
 */
export function paginate<T>(all: readonly T[], token: PageToken): Page<T> {
  const start = (token.page - 1) * token.limit;
  if (start >= all.length) return { items: [], nextPageToken: undefined };
  const end = Math.min(start + token.limit, all.length);
  const more = end < all.length && token.page < UINT16_MAX;
  return {
    items: all.slice(start, end),
    nextPageToken: more ? encodePageToken({ limit: token.limit, page: token.page + 1 }) : undefined,
  };
}

const URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const PAD = '=';

function isNewline(c: string | undefined): boolean {
  return c === '\n' || c === '\r';
}

/**
 * Go's `base64.URLEncoding.DecodeString` (padded, not strict), reproduced so that a bad token
 * gets the same `illegal base64 data at input byte N` as fleet gave. Returns the bytes, or the
 * error message. Newlines are skipped, as Go skips them.
 */
export function goBase64UrlDecode(src: string): Buffer | string {
  const corrupt = (at: number): string => `illegal base64 data at input byte ${at}`;
  const out: number[] = [];
  let si = 0;
  while (si < src.length && isNewline(src[si])) si++;
  let end = false;
  while (si < src.length && !end) {
    const quantum = [0, 0, 0, 0];
    let dlen = 4;
    for (let j = 0; j < 4; j++) {
      if (si === src.length) return corrupt(si - j);
      const c = src.charAt(si);
      si++;
      while (si < src.length && isNewline(src[si])) si++;
      if (c === PAD) {
        if (j < 2) return corrupt(si - 1);
        if (j === 2) {
          // "==" is expected; the first '=' is consumed.
          if (si === src.length) return corrupt(src.length);
          if (src[si] !== PAD) return corrupt(si - 1);
          si++;
          while (si < src.length && isNewline(src[si])) si++;
        }
        if (si < src.length) return corrupt(si);
        dlen = j;
        end = true;
        break;
      }
      const v = URL_ALPHABET.indexOf(c);
      if (v < 0) return corrupt(si - 1);
      quantum[j] = v;
    }
    const [a = 0, b = 0, c = 0, d = 0] = quantum;
    const bits = (a << 18) | (b << 12) | (c << 6) | d;
    const bytes = [(bits >> 16) & 0xff, (bits >> 8) & 0xff, bits & 0xff];
    out.push(...bytes.slice(0, dlen - 1));
  }
  return Buffer.from(out);
}

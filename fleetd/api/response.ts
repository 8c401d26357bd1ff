import { encodeEntity } from './json.js';

/**
 * What a handler answers: a status, an optional body and headers. The server adds the headers
 * every response carries (`Server`, `Content-Length`) and writes it.
 */
export interface ApiResponse {
  readonly status: number;
  /** The body; absent for responses without one (201, 204). */
  readonly body?: string;
  /**
   * A body streamed as it is produced (chunked), instead of `body`; the server stops reading it
   * (calls `return`) when the client goes away.
   */
  readonly stream?: AsyncIterable<string>;
  readonly headers?: Readonly<Record<string, string>>;
}

/** The content type of every JSON body, without parameters, as fleet sent it. */
export const JSON_CONTENT_TYPE = 'application/json';

/** A JSON response with the entity serialized the way fleet did (sorted keys, no empty fields). */
export function jsonResponse(status: number, entity: object): ApiResponse {
  return { status, body: encodeEntity(entity), headers: { 'Content-Type': JSON_CONTENT_TYPE } };
}

/** A response without a body, e.g. 201 after a create or 204 after an update. */
export function emptyResponse(status: number, headers: Readonly<Record<string, string>> = {}): ApiResponse {
  return { status, headers };
}

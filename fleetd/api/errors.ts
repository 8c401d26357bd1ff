import { FleetError, isFleetError } from '../../lib/errors.js';

/**
 * How the API fails (fleet's `api/serialization.go`): every error is the body
 * `{"error":{"code":<status>,"message":"<text>"}}` with `Content-Type: application/json`, and
 * `message` is `""` when there is nothing to say (internal errors say nothing on purpose).
 */

/** The message of every 503: the registry (etcd) cannot be reached, or the server is not ready. */
export const UNAVAILABLE_MESSAGE = 'fleet server unable to communicate with etcd';

/**
 * A request the API refuses, carrying the HTTP status and fleet's message for it. Handlers throw
 * it; the server turns it into an error response. Any other error becomes a 503 or a 500
 * (`classifyFailure`).
 */
export class ApiError extends FleetError {
  override readonly name = 'ApiError';
  /** The HTTP status, 4xx or 5xx. */
  readonly status: number;
  /** Extra response headers, e.g. `Allow` on a 405. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, message = '', headers: Readonly<Record<string, string>> = {}) {
    super('API_REQUEST_REJECTED', message);
    this.status = status;
    this.headers = headers;
  }
}

/**
 * The error body, byte for byte as fleet writes it: `code` then `message`, and `message` is kept
 * when empty (the one place where an empty field is not omitted).
 */
export function errorBody(status: number, message: string): string {
  return JSON.stringify({ error: { code: status, message } });
}

/** What the server answers for a failure that is not an ApiError. */
export interface FailureClass {
  readonly status: 503 | 500;
  readonly message: string;
}

/**
 * Maps a failure of the registry (or a bug) to a response: an unreachable registry that may come
 * back (retryable `REGISTRY_UNAVAILABLE`) is a 503 with fleet's etcd message; anything else is
 * a 500 with an empty message, as fleet answered internal errors.
 */
export function classifyFailure(err: unknown): FailureClass {
  if (isFleetError(err, 'REGISTRY_UNAVAILABLE') && err.retryable) {
    return { status: 503, message: UNAVAILABLE_MESSAGE };
  }
  return { status: 500, message: '' };
}

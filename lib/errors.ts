/**
 * The one error type fleet-ts throws. Every failure has a stable `code` that callers and tests
 * match on, a `retryable` marker that tells loops whether backing off and trying again can help,
 * and an optional `cause`. Messages say what, where and why, for a human.
 */
export type FleetErrorCode =
  // unit/: the unit model
  | 'UNIT_FILE_INVALID'
  | 'UNIT_NAME_INVALID'
  | 'UNIT_OPTIONS_INVALID'
  | 'STATE_INVALID'
  | 'STATE_TRANSITION_INVALID'
  // registry/: the store
  | 'REGISTRY_UNAVAILABLE'
  | 'REGISTRY_CORRUPT'
  | 'MACHINE_ID_IN_USE'
  | 'MACHINE_UNREACHABLE'
  // agent/: the local systemd and fleet's unit files
  | 'SYSTEMD_UNAVAILABLE'
  | 'SYSTEMD_FAILED'
  | 'UNIT_FILE_IO_FAILED'
  // fleetd: configuration and start-up
  | 'CONFIG_INVALID'
  // fleetctl: the command line and its API client
  | 'USAGE_INVALID'
  | 'API_UNREACHABLE'
  | 'API_ERROR'
  // fleetd/api: the HTTP API (a request the API refuses; a listener that cannot be opened)
  | 'API_REQUEST_REJECTED'
  | 'API_LISTEN_FAILED'
  // test harnesses and tooling
  | 'HARNESS_MISSING_BINARY'
  | 'HARNESS_START_FAILED'
  | 'HARNESS_COMMAND_FAILED'
  | 'TIMEOUT'
  | 'ABORTED'
  | 'INTERNAL';

export interface FleetErrorOptions {
  readonly retryable?: boolean;
  readonly cause?: unknown;
}

export class FleetError extends Error {
  override readonly name: string = 'FleetError';
  readonly code: FleetErrorCode;
  readonly retryable: boolean;

  constructor(code: FleetErrorCode, message: string, options: FleetErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** True when `err` is a FleetError, optionally with the given code. */
export function isFleetError(err: unknown, code?: FleetErrorCode): err is FleetError {
  return err instanceof FleetError && (code === undefined || err.code === code);
}

/** Renders any thrown value as a one-line message, for logs and CLI output. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * An error that retrying cannot cure until something changes (controller-runtime's
 * `TerminalError`): a reconcile loop logs it and does not retry it with backoff; the next run comes
 * with the next event or the safety-net interval, as after a success. Wrap with {@link terminal}.
 */
export class TerminalError extends Error {
  override readonly name: string = 'TerminalError';

  constructor(cause: unknown) {
    super(describeError(cause), { cause });
  }
}

/** Marks `err` as terminal for reconcile loops (see {@link TerminalError}). */
export function terminal(err: unknown): TerminalError {
  return err instanceof TerminalError ? err : new TerminalError(err);
}

/**
 * Waiting in tests without fixed sleeps: `eventually` re-runs a check until it passes or a deadline
 * passes, so a test waits exactly as long as the system needs and no longer.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { FleetError, describeError } from '../lib/errors.js';

/** How long `eventually` keeps trying, and how often. */
export interface EventuallyOptions {
  /** Give up after this long, counted from the first attempt. Default 5000 ms. */
  readonly timeoutMs?: number;
  /** Pause between the end of a failed attempt and the next one. Default 50 ms. */
  readonly intervalMs?: number;
  /** What is being waited for, for the timeout error: `'the new leader to serve writes'`. */
  readonly description?: string;
}

const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_INTERVAL_MS = 50;

/**
 * Runs `check` until it returns (or resolves) without throwing, and returns what it returned.
 * A check fails by throwing, so chai assertions work inside it:
 * `await eventually(async () => expect(await client.get('k').string()).to.equal('v'))`.
 *
 * Throws `FleetError('TIMEOUT')` when the deadline passes, with the last failure as `cause` and in
 * the message. An attempt still in flight at the deadline is abandoned, not awaited, so a check that
 * hangs cannot stretch the wait.
 */
export async function eventually<T>(
  check: () => T | Promise<T>,
  options: EventuallyOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  const deadline = Date.now() + timeoutMs;
  let attempts = 0;
  let lastError: unknown = new Error('no attempt finished before the deadline');

  for (;;) {
    attempts++;
    const outcome = await settleBefore(check, deadline);
    if (outcome.kind === 'passed') return outcome.value;
    if (outcome.kind === 'failed') lastError = outcome.error;
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    // The last attempt runs right at the deadline rather than giving up an interval early.
    await delay(Math.min(intervalMs, remaining));
  }

  const what = options.description ?? 'a condition';
  const tries = attempts === 1 ? '1 attempt' : `${attempts} attempts`;
  throw new FleetError(
    'TIMEOUT',
    `Timed out after ${timeoutMs} ms (${tries}) waiting for ${what}; ` +
      `last failure: ${describeError(lastError)}`,
    { cause: lastError },
  );
}

type Outcome<T> =
  | { readonly kind: 'passed'; readonly value: T }
  | { readonly kind: 'failed'; readonly error: unknown }
  | { readonly kind: 'timed-out' };

/** Runs one attempt, racing it against the deadline. */
async function settleBefore<T>(check: () => T | Promise<T>, deadline: number): Promise<Outcome<T>> {
  const attempt = (async (): Promise<Outcome<T>> => {
    try {
      return { kind: 'passed', value: await check() };
    } catch (error) {
      return { kind: 'failed', error };
    }
  })();
  const controller = new AbortController();
  const expiry = delay(Math.max(0, deadline - Date.now()), { kind: 'timed-out' } as const, {
    signal: controller.signal,
  }).catch((): Outcome<T> => ({ kind: 'timed-out' }));
  try {
    return await Promise.race([attempt, expiry]);
  } finally {
    controller.abort();
  }
}

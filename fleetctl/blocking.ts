import { setTimeout as delay } from 'node:timers/promises';
import { describeError } from '../lib/errors.js';

/**
 * Blocking, as fleet's fleetctl does it (FLEET-COMPAT 1.7): a command waits for its units by
 * polling in attempts of 2 s. `--block-attempts=N` gives up after N attempts, 0 waits without
 * limit, and `--no-block` does not wait at all. Deviation: fleet polled every 250 ms; fleetctl
 * polls every 100 ms, so that it returns soon after the units are there (the waits of one command
 * share one list request per poll, see waits.ts, so the shorter cadence costs fleetd little).
 */

/** The polling cadence. Tests shorten it. */
export interface BlockTiming {
  /** Pause between two polls. */
  readonly pollMs: number;
  /** Length of one attempt. */
  readonly attemptMs: number;
}

/** The default cadence: 100 ms polls within fleet's 2 s attempts. */
export const FLEET_BLOCK_TIMING: BlockTiming = { pollMs: 100, attemptMs: 2000 };

/**
 * How many API requests a command has in flight at once when it acts on many units (reads,
 * creations, state changes). Output stays in argument order whatever the order of the replies.
 */
export const REQUEST_CONCURRENCY = 16;

/** Do not wait at all (`--no-block`). */
export const NO_BLOCK = -1;

/** Wait without limit (`--block-attempts=0`, the default). */
export const UNLIMITED = 0;

/**
 * fleet's `getBlockAttempts`: `--no-block` gives -1 (no waiting) whatever the attempts; otherwise
 * a positive `--block-attempts` is the limit, and 0 or less means no limit.
 */
export function blockAttempts(noBlock: boolean, attempts: number): number {
  if (noBlock) return NO_BLOCK;
  return attempts > 0 ? attempts : UNLIMITED;
}

/**
 * The outcome of one poll: done with a value, or not yet, with what to say if time runs out; a
 * `fatal` result ends the wait at once (the unit failed, or vanished).
 */
export type PollResult<T> =
  | { readonly done: true; readonly value: T }
  | { readonly done: false; readonly why?: string; readonly fatal?: boolean };

/** How a wait ended; `timedOut` is false when a fatal poll ended it. */
export type WaitResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly timedOut: boolean; readonly why?: string };

/**
 * Calls `poll` at once and then every `pollMs` until it reports done, or until `attempts`
 * attempts of `attemptMs` have passed (`attempts` 0: never gives up). A poll that throws ends the
 * wait with that error as `why`, so waits never reject. On time-out the last poll's `why` is returned.
 */
export async function pollUntil<T>(
  poll: () => Promise<PollResult<T>>,
  attempts: number,
  timing: BlockTiming,
): Promise<WaitResult<T>> {
  const deadline = attempts > 0 ? Date.now() + attempts * timing.attemptMs : Number.POSITIVE_INFINITY;
  for (;;) {
    let result: PollResult<T>;
    try {
      result = await poll();
    } catch (err) {
      return { ok: false, timedOut: false, why: describeError(err) };
    }
    if (result.done) return { ok: true, value: result.value };
    const why = result.why === undefined ? {} : { why: result.why };
    if (result.fatal === true) return { ok: false, timedOut: false, ...why };
    const remaining = deadline - Date.now();
    if (remaining <= 0) return { ok: false, timedOut: true, ...why };
    await delay(Math.min(timing.pollMs, remaining));
  }
}

import { setTimeout as delay } from 'node:timers/promises';

import { systemClock } from '../lib/clock.js';
import { describeError } from '../lib/errors.js';

/**
 * Blocking, as fleet's fleetctl does it (docs/fleet-compat.md §1.7): a command waits for its units by
 * polling in attempts of 2 s. `--block-attempts=N` gives up after N attempts, 0 waits without
 * limit, and `--no-block` does not wait at all. Deviation: fleet polled every 250 ms; fleetctl
 * polls 10 ms after its first look, then doubles the pause up to 100 ms, so that it returns soon
 * after the units are there: placing and starting a unit takes tens of milliseconds, and a fixed
 * cadence would add up to one whole pause per wait. The waits of one command share one list
 * request per poll (see waits.ts), so the short pauses cost fleetd little.
 */

/** The polling cadence. Tests shorten it. */
export interface BlockTiming {
  /** The longest pause between two polls. */
  readonly pollMs: number;
  /** The first pause; each next one doubles, up to `pollMs`. Defaults to `pollMs` (a fixed cadence). */
  readonly firstPollMs?: number;
  /** Length of one attempt. */
  readonly attemptMs: number;
}

/** The default cadence: pauses of 10, 20, 40, 80, then 100 ms, within fleet's 2 s attempts. */
export const FLEET_BLOCK_TIMING: BlockTiming = { firstPollMs: 10, pollMs: 100, attemptMs: 2000 };

/** The pause after the `retry`-th unsuccessful poll (0 for the first). */
export function pollDelay(timing: BlockTiming, retry: number): number {
  const first = Math.min(timing.firstPollMs ?? timing.pollMs, timing.pollMs);
  return Math.min(timing.pollMs, first * 2 ** Math.min(retry, 30));
}

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
 * Calls `poll` at once and then after each pause of {@link pollDelay} until it reports done, or until `attempts`
 * attempts of `attemptMs` have passed (`attempts` 0: never gives up). A poll that throws ends the
 * wait with that error as `why`, so waits never reject. On time-out the last poll's `why` is returned.
 */
export async function pollUntil<T>(
  poll: () => Promise<PollResult<T>>,
  attempts: number,
  timing: BlockTiming,
  sleep: (ms: number) => Promise<unknown> = delay,
): Promise<WaitResult<T>> {
  const deadline = attempts > 0 ? systemClock.now() + attempts * timing.attemptMs : Number.POSITIVE_INFINITY;
  for (let retry = 0; ; retry++) {
    let result: PollResult<T>;
    try {
      result = await poll();
    } catch (err) {
      return { ok: false, timedOut: false, why: describeError(err) };
    }
    if (result.done) return { ok: true, value: result.value };
    const why = result.why === undefined ? {} : { why: result.why };
    if (result.fatal === true) return { ok: false, timedOut: false, ...why };
    const remaining = deadline - systemClock.now();
    if (remaining <= 0) return { ok: false, timedOut: true, ...why };
    await sleep(Math.min(pollDelay(timing, retry), remaining));
  }
}

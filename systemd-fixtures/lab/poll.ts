import { setTimeout as delay } from 'node:timers/promises';

/** Options for {@link pollUntil}. */
export interface PollOptions {
  readonly timeoutMs: number;
  /** Pause between attempts; default 100 ms. */
  readonly intervalMs?: number;
}

/**
 * Calls `probe` until it returns something other than `undefined`, and returns that; returns
 * `undefined` when `timeoutMs` passes first. A probe that throws stops the polling with its error,
 * so a probe decides for itself which failures mean "not yet".
 */
export async function pollUntil<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  options: PollOptions,
): Promise<T | undefined> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) return undefined;
    await delay(options.intervalMs ?? 100);
  }
}

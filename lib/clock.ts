import { FleetError } from './errors.js';

/**
 * Time, injected. Production code asks a Clock for the time and for delays so that tests can
 * drive time by hand (ManualClock) instead of sleeping for real.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds. Rejects with FleetError('ABORTED') as soon as `signal`
   * aborts (also when it is already aborted); never resolves early otherwise.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

function abortedError(): FleetError {
  return new FleetError('ABORTED', 'sleep aborted');
}

/** The real clock: Date.now and timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(abortedError());
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(abortedError());
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

interface Sleeper {
  readonly wakeAt: number;
  readonly resolve: () => void;
}

/**
 * A clock that moves only when told: `advance(ms)` wakes every sleeper whose time has come, in
 * order. For unit tests of loops, backoff and leases without real waiting.
 */
export class ManualClock implements Clock {
  private current: number;
  private sleepers: Sleeper[] = [];

  constructor(start = 0) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(abortedError());
        return;
      }
      const sleeper: Sleeper = {
        wakeAt: this.current + Math.max(0, ms),
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        this.sleepers = this.sleepers.filter((s) => s !== sleeper);
        reject(abortedError());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.sleepers.push(sleeper);
    });
  }

  /** How many sleeps are pending: lets a test wait until a loop has gone to sleep. */
  get pendingSleeps(): number {
    return this.sleepers.length;
  }

  /** Moves time forward, waking due sleepers in wake-up order and letting each run. */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    for (;;) {
      const due = this.sleepers.filter((s) => s.wakeAt <= target).sort((a, b) => a.wakeAt - b.wakeAt)[0];
      if (due === undefined) break;
      this.sleepers = this.sleepers.filter((s) => s !== due);
      this.current = Math.max(this.current, due.wakeAt);
      due.resolve();
      // Let the woken code run (and perhaps sleep again) before looking at the next sleeper.
      await flushMicrotasks();
    }
    this.current = target;
  }
}

/** Lets pending promise callbacks run. */
export async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
  await new Promise<void>((resolve) => setImmediate(resolve));
}

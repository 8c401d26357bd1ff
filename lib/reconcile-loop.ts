import { Backoff } from './backoff.js';
import type { Clock } from './clock.js';
import { describeError, isFleetError, TerminalError } from './errors.js';
import type { Logger } from './logger.js';

export interface ReconcileLoopOptions {
  /** Names the loop in logs. */
  readonly name: string;
  /**
   * One level-based reconcile: re-read the state, plan, apply. Must honour `signal` (abort as
   * soon as it can when the loop closes). A throw is logged and retried with backoff, unless it is a
   * {@link TerminalError}: that is logged and waits for the next trigger or interval.
   */
  readonly reconcile: (signal: AbortSignal) => Promise<void>;
  /** The safety-net period between runs when nothing triggers one. */
  readonly intervalMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * Retry delays after a failed run (waited even when events trigger meanwhile); default 100 ms
   * doubling to the interval.
   */
  readonly backoff?: Backoff;
  /** Told when each run ends: whether it succeeded and how long it took (for metrics). */
  readonly onRunEnd?: (ok: boolean, ms: number) => void;
}

/**
 * Runs a reconcile function on events and on a slow timer, controller-runtime style: events only
 * `trigger()`; the run re-reads everything. One run is in flight at a time and at most one more
 * is queued, so a burst of events costs at most two runs. A failed run is retried with backoff
 * (sooner than the interval); success resets the backoff.
 *
 * After a failure the backoff delay is always waited, even when events arrived meanwhile: they
 * only coalesce into the retry. Otherwise a steady stream of events (a busy cluster) would make a
 * failing loop retry at once, over and over, and an overloaded etcd never recover. After a
 * successful run an event is handled at once.
 *
 * A {@link TerminalError} (controller-runtime's terminal errors) is not retried: retrying cannot
 * help until something changes, so the loop logs it as an error and goes on as after a success,
 * running again on the next event or after the interval.
 */
export class ReconcileLoop {
  private readonly controller = new AbortController();
  private triggered = false;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private readonly backoff: Backoff;
  private idleWaiters: (() => void)[] = [];
  private busy = false;
  /** Waiting out the backoff after a failure (events meanwhile do not cut it short). */
  private backingOff = false;
  /** Completed runs (successful or not), for tests and metrics. */
  runs = 0;
  failures = 0;

  constructor(private readonly options: ReconcileLoopOptions) {
    this.backoff = options.backoff ?? new Backoff({ initialMs: 100, maxMs: options.intervalMs });
  }

  /** Starts the loop; the first run happens at once. Idempotent. */
  start(): void {
    if (this.running !== undefined) return;
    this.triggered = true;
    this.running = this.loop();
  }

  /** Asks for a run as soon as the current one (if any) is done. Cheap; call on every event. */
  trigger(): void {
    this.triggered = true;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /**
   * Resolves when no run is in flight and none is queued, or when the next run waits for a timer
   * only (the interval, or the backoff after a failure).
   */
  idle(): Promise<void> {
    if (this.backingOff || (!this.busy && !this.triggered)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops the loop: aborts the run in flight and waits for it to end. Idempotent. */
  async close(): Promise<void> {
    this.controller.abort();
    this.trigger();
    await this.running;
  }

  /** A getter, so that checks after an await are not narrowed away by the type checker. */
  private get closed(): boolean {
    return this.controller.signal.aborted;
  }

  private async loop(): Promise<void> {
    const signal = this.controller.signal;
    const log = this.options.logger;
    let delay = this.options.intervalMs;
    let failed = false;
    while (!signal.aborted) {
      if (failed) {
        // Back off whatever triggers meanwhile; the retry runs anyway, covering them.
        failed = false;
        this.backingOff = true;
        this.notifyIdle();
        try {
          await this.options.clock.sleep(delay, signal);
        } catch {
          break;
        } finally {
          this.backingOff = false;
        }
        this.triggered = true;
      } else if (!this.triggered) {
        this.notifyIdle();
        await this.waitForTrigger(delay, signal);
        if (this.closed) break;
      }
      this.triggered = false;
      this.busy = true;
      const started = this.options.clock.now();
      let ok = false;
      try {
        await this.options.reconcile(signal);
        ok = true;
        this.backoff.reset();
        delay = this.options.intervalMs;
      } catch (err) {
        if (this.closed) break;
        this.failures++;
        if (err instanceof TerminalError) {
          this.backoff.reset();
          delay = this.options.intervalMs;
          log.error('reconcile failed; not retried until the next change', {
            loop: this.options.name,
            error: describeError(err),
          });
        } else {
          failed = true;
          delay = Math.min(this.backoff.next(), this.options.intervalMs);
          const fields = { loop: this.options.name, error: describeError(err), retryInMs: delay };
          // A retryable failure (etcd briefly away) is expected in a cluster; anything else is a bug
          // or a problem a human must look at.
          if (isFleetError(err) && err.retryable) log.warn('reconcile failed; retrying', fields);
          else log.error('reconcile failed; retrying', fields);
        }
      } finally {
        this.runs++;
        this.busy = false;
      }
      const took = this.options.clock.now() - started;
      this.options.onRunEnd?.(ok, took);
      if (took > this.options.intervalMs) {
        log.warn('reconcile took longer than its interval', { loop: this.options.name, tookMs: took });
      }
    }
    this.busy = false;
    this.triggered = false;
    this.notifyIdle();
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async waitForTrigger(delayMs: number, signal: AbortSignal): Promise<void> {
    const timer = new AbortController();
    const onAbort = (): void => {
      timer.abort();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const triggered = new Promise<void>((resolve) => {
      this.wake = resolve;
    });
    const slept = this.options.clock.sleep(delayMs, timer.signal).then(
      () => {
        this.triggered = true;
      },
      () => undefined,
    );
    await Promise.race([triggered, slept]);
    timer.abort();
    this.wake = undefined;
    signal.removeEventListener('abort', onAbort);
  }
}

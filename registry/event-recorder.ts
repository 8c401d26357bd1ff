import { Backoff } from '../lib/backoff.js';
import type { Clock } from '../lib/clock.js';
import { describeError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { ClusterEvent, ClusterEventInput, EventSink } from '../unit/cluster-events.js';
import type { EventRetention } from './event-retention.js';
import type { EventStore } from './registry.js';

/** How an EventRecorder is built. */
export interface EventRecorderDeps {
  readonly store: Pick<EventStore, 'recordEvents' | 'trimEvents'>;
  /** This fleetd's machine ID: the reporter of every event. */
  readonly reporter: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly retention: EventRetention;
  /** The most events to keep; trimmed by `trimIf` now and then. */
  readonly maxCount: number;
  /** True while this fleetd should trim the history (its engine leads). Default: never. */
  readonly trimIf?: () => boolean;
  /** How long events gather before one write. Default 500 ms. */
  readonly flushDelayMs?: number;
  /** How often at most the history is trimmed. Default 60 s. */
  readonly trimEveryMs?: number;
}

/** Events held while the store is away; beyond this the oldest are dropped (and counted). */
const MAX_BUFFERED = 5000;
const DEFAULT_FLUSH_DELAY_MS = 500;
const DEFAULT_TRIM_EVERY_MS = 60_000;

/**
 * Batches the events of one fleetd (engine and agent alike) into few writes: `record` only
 * buffers; a write goes out `flushDelayMs` after the first event of a batch, so a burst of
 * placements or starts costs one transaction per 100 events, not one per event. A failed write is
 * retried with backoff, keeping up to 5,000 events; recording never blocks or throws. While
 * `trimIf()` holds, the history is trimmed to `maxCount` at most every `trimEveryMs`, right after
 * a write (three requests: count, find the oldest, delete them).
 */
export class EventRecorder implements EventSink {
  private readonly log: Logger;
  private buffer: ClusterEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private readonly backoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
  private lastTrim = 0;
  private closed = false;
  /** Events dropped because the buffer was full. */
  dropped = 0;

  constructor(private readonly deps: EventRecorderDeps) {
    this.log = deps.logger.child({ component: 'events' });
  }

  record(event: ClusterEventInput): void {
    if (this.closed) return;
    this.buffer.push({ ...event, time: this.deps.clock.now(), reporter: this.deps.reporter });
    if (this.buffer.length > MAX_BUFFERED) {
      this.buffer.shift();
      this.dropped++;
    }
    this.schedule(this.deps.flushDelayMs ?? DEFAULT_FLUSH_DELAY_MS);
  }

  /** Writes what is buffered now; resolves when written (or failed, to be retried). */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.flushing !== undefined) await this.flushing;
    if (this.buffer.length === 0) return;
    this.flushing = this.write();
    try {
      await this.flushing;
    } finally {
      this.flushing = undefined;
    }
  }

  /** Writes what is buffered (one try) and stops recording. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(delayMs: number): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delayMs);
    this.timer.unref();
  }

  private async write(): Promise<void> {
    const batch = this.buffer;
    this.buffer = [];
    try {
      await this.deps.store.recordEvents(batch, this.deps.retention);
      this.backoff.reset();
    } catch (err) {
      // Keep them, older first, for the retry.
      this.buffer = [...batch, ...this.buffer].slice(-MAX_BUFFERED);
      const delay = this.backoff.next();
      this.log.warn('events not written; retrying', {
        events: batch.length,
        retryInMs: delay,
        error: describeError(err),
      });
      if (!this.closed) this.schedule(delay);
      return;
    }
    await this.maybeTrim();
  }

  private async maybeTrim(): Promise<void> {
    const now = this.deps.clock.now();
    if (
      this.deps.trimIf?.() !== true ||
      now - this.lastTrim < (this.deps.trimEveryMs ?? DEFAULT_TRIM_EVERY_MS)
    )
      return;
    this.lastTrim = now;
    try {
      const trimmed = await this.deps.store.trimEvents(this.deps.maxCount);
      if (trimmed > 0) this.log.debug('oldest events trimmed', { trimmed, maxCount: this.deps.maxCount });
    } catch (err) {
      this.log.warn('events not trimmed; trying again later', { error: describeError(err) });
    }
  }
}

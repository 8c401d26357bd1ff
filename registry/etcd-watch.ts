import type { IWatchResponse, Watcher } from 'etcd3';
import { Backoff } from '../lib/backoff.js';
import { describeError } from '../lib/errors.js';
import type { EtcdConnection } from './etcd-connection.js';
import type { ChangeListener, Subscription } from './registry.js';

/** One range to watch: a prefix or a single key, optionally from a past revision. */
export type WatchScope =
  | { readonly prefix: string; readonly startRevision?: string }
  | { readonly key: string; readonly startRevision?: string };

/**
 * A level-based etcd watch over one or more scopes: it only tells its listener that something
 * changed, coalescing what arrives in one tick, and one transaction's changes, into one call.
 *
 * etcd3 re-establishes a broken watch stream on its own and replays what was missed; after such a
 * reconnect the listener is called once more so callers re-read. A watch etcd cancels (a compacted
 * start revision, for example) is recreated from the current revision, with one call after.
 */
export class EtcdWatch implements Subscription {
  private readonly watchers = new Set<Watcher>();
  private closed = false;
  private pending = false;
  /** The newest revision a call was made for. */
  private seen = 0n;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly conn: EtcdConnection,
    private readonly operation: string,
    private readonly listener: ChangeListener,
    private readonly onClose: (watch: EtcdWatch) => void,
  ) {}

  /**
   * Starts watching every scope; resolves once etcd confirmed them all, so changes made after it
   * resolves are seen. Fails with REGISTRY_UNAVAILABLE when etcd does not confirm in time.
   */
  static async start(
    conn: EtcdConnection,
    operation: string,
    scopes: readonly WatchScope[],
    listener: ChangeListener,
    onClose: (watch: EtcdWatch) => void = () => undefined,
  ): Promise<EtcdWatch> {
    const watch = new EtcdWatch(conn, operation, listener, onClose);
    try {
      await Promise.all(scopes.map((scope) => watch.attach(scope)));
    } catch (err) {
      await watch.close();
      throw err;
    }
    return watch;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.onClose(this);
      const watchers = [...this.watchers];
      this.watchers.clear();
      // A cancel waits for etcd's answer; a frozen etcd must not hang close(). etcd3 drops the
      // watcher from its stream when it reconnects.
      await Promise.all(watchers.map((w) => this.cancel(w)));
    })();
    return this.closing;
  }

  private async attach(scope: WatchScope): Promise<void> {
    const builder = this.conn.client.watch();
    if ('prefix' in scope) builder.prefix(scope.prefix);
    else builder.key(scope.key);
    if (scope.startRevision !== undefined) builder.startRevision(scope.startRevision);
    const creating = builder.create();
    let watcher: Watcher;
    try {
      watcher = await this.conn.request(this.operation, () => creating);
    } catch (err) {
      // Cancel it if etcd confirms it after all.
      void creating.then(
        (late) => {
          late.on('error', () => undefined);
          return this.cancel(late);
        },
        (createErr: unknown) => {
          this.conn.logger.debug('watch creation failed late', { error: describeError(createErr) });
        },
      );
      throw err;
    }
    if (this.closed) {
      await this.cancel(watcher);
      return;
    }
    this.watchers.add(watcher);
    let disconnected = false;
    watcher.on('data', (res: IWatchResponse) => {
      // One transaction seen by several scopes (unit/ and desired/ on submit) is one change. A
      // scope lagging behind with an older revision needs no call: the re-read after the newer
      // one already sees it.
      const revision = res.events.reduce((max, e) => {
        const r = BigInt(e.kv.mod_revision);
        return r > max ? r : max;
      }, 0n);
      if (revision <= this.seen) return;
      this.seen = revision;
      this.fire();
    });
    watcher.on('disconnected', () => {
      disconnected = true;
    });
    watcher.on('connected', () => {
      if (!disconnected) return;
      disconnected = false;
      this.fire();
    });
    watcher.on('error', (err) => {
      this.conn.logger.warn('etcd watch cancelled; recreating it', {
        operation: this.operation,
        error: describeError(err),
      });
      this.watchers.delete(watcher);
      const { startRevision: _, ...current } = scope;
      void this.recreate(current);
    });
  }

  private async recreate(scope: WatchScope): Promise<void> {
    const backoff = new Backoff({ initialMs: 100, maxMs: 2_000 });
    while (!this.closed) {
      try {
        await this.attach(scope);
        this.fire();
        return;
      } catch (err) {
        this.conn.logger.debug('recreating an etcd watch failed', { error: describeError(err) });
      }
      try {
        await this.conn.clock.sleep(backoff.next(), this.conn.signal);
      } catch {
        // The registry is closing.
        return;
      }
    }
  }

  private fire(): void {
    if (this.closed || this.pending) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      if (this.closed) return;
      try {
        this.listener();
      } catch (err) {
        // Listeners must not throw; one that does must not break the watch.
        this.conn.logger.error('a registry watch listener threw', {
          operation: this.operation,
          error: describeError(err),
        });
      }
    });
  }

  private async cancel(watcher: Watcher): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.conn.timeoutMs);
    });
    try {
      await Promise.race([watcher.cancel(), timeout]);
    } catch (err) {
      this.conn.logger.debug('cancelling an etcd watch failed', { error: describeError(err) });
    } finally {
      clearTimeout(timer);
    }
  }
}

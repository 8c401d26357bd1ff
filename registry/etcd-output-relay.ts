import { randomUUID } from 'node:crypto';
import type { IKeyValue, Watcher } from 'etcd3';
import { describeError } from '../lib/errors.js';
import type { EtcdConnection } from './etcd-connection.js';
import { ops } from './etcd-connection.js';
import { KeptLease } from './etcd-lease.js';
import type { KeyLayout } from './keys.js';
import {
  ChunkBatcher,
  RELAY_FIRST_ANSWER_MS,
  RELAY_MAX_ACTIVE,
  checkOutputRequest,
  noAnswer,
  type OutputChunk,
  type OutputHandler,
  type OutputRelay,
  type OutputRequest,
} from './output-relay.js';
import type { Subscription } from './registry.js';

/**
 * The output relay through etcd (output-relay.ts says what it is for).
 *
 * - The requester grants a lease (REQUEST_TTL_S, kept alive while it waits), watches
 *   `relay-answer/<id>/`, then puts `relay/<machine>/<id>` = the request, bound to that lease.
 *   When it is done, or dies, the request key goes: revoked, or expired with the lease.
 * - The target's agent watches only `relay/<own ID>/`. For each new request it grants a lease of
 *   its own (ANSWER_TTL_S), puts `relay-answer/<id>/alive`, then the answer in numbered chunks,
 *   all bound to that lease, and the `exit` (or `error`) chunk last. Then it stops keeping the
 *   lease alive: whatever the requester did not delete vanishes by itself. A deleted request
 *   key stops the answer (a followed journal ends).
 * - The requester yields chunks in order. No `alive` key within RELAY_FIRST_ANSWER_MS means the
 *   machine does not answer; the `alive` key vanishing before the last chunk means its fleetd
 *   died mid-way.
 *
 * Sizes and rates are bounded by the batcher (64 KiB chunks at most every 50 ms per request) and
 * by RELAY_MAX_ACTIVE requests per machine.
 */

/** The requester's lease: the request lives this long after the requester dies. */
const REQUEST_TTL_S = 10;
/** The answerer's lease: unread chunks live this long after the answer ends or the answerer dies. */
const ANSWER_TTL_S = 10;

type Event = { readonly type: 'put' | 'delete'; readonly kv: IKeyValue };

/** An async queue of watch events with a timed wait. */
class EventQueue {
  private readonly items: Event[] = [];
  private wake: (() => void) | undefined;

  push(event: Event): void {
    this.items.push(event);
    this.wake?.();
  }

  /** The next event, or undefined after `timeoutMs` (undefined: no limit) or when aborted. */
  async next(timeoutMs: number | undefined, signal: AbortSignal): Promise<Event | undefined> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) return item;
      if (signal.aborted) return undefined;
      const woke = await new Promise<boolean>((resolve) => {
        const timer =
          timeoutMs === undefined
            ? undefined
            : setTimeout(() => {
                resolve(false);
              }, timeoutMs);
        const onAbort = (): void => {
          resolve(false);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        this.wake = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          resolve(true);
        };
      });
      this.wake = undefined;
      if (!woke) return this.items.shift();
    }
  }
}

function decodeChunk(text: string): OutputChunk | undefined {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (typeof o.text === 'string') return { kind: 'data', text: o.text };
    if (typeof o.exit === 'number') return { kind: 'exit', code: o.exit };
    if (typeof o.error === 'string') return { kind: 'error', message: o.error };
  } catch {
    // Fall through: a malformed chunk is reported as such below.
  }
  return undefined;
}

function encodeChunk(chunk: OutputChunk): string {
  switch (chunk.kind) {
    case 'data':
      return JSON.stringify({ text: chunk.text });
    case 'exit':
      return JSON.stringify({ exit: chunk.code });
    case 'error':
      return JSON.stringify({ error: chunk.message });
  }
}

export class EtcdOutputRelay implements OutputRelay {
  constructor(
    private readonly conn: EtcdConnection,
    private readonly keys: KeyLayout,
  ) {}

  private async watch(prefix: string, operation: string, onEvent: (e: Event) => void): Promise<Watcher> {
    const creating = this.conn.client.watch().prefix(prefix).create();
    let watcher: Watcher;
    try {
      watcher = await this.conn.request(operation, () => creating);
    } catch (err) {
      void creating.then(
        (late) => late.cancel(),
        () => undefined,
      );
      throw err;
    }
    watcher.on('put', (kv) => {
      onEvent({ type: 'put', kv });
    });
    watcher.on('delete', (kv) => {
      onEvent({ type: 'delete', kv });
    });
    watcher.on('error', (err) => {
      this.conn.logger.debug('relay watch error', { operation, error: describeError(err) });
    });
    return watcher;
  }

  private cancel(watcher: Watcher): void {
    watcher.cancel().catch((err: unknown) => {
      this.conn.logger.debug('relay watch cancel failed', { error: describeError(err) });
    });
  }

  async *requestOutput(
    machine: string,
    request: OutputRequest,
    signal: AbortSignal,
  ): AsyncIterable<OutputChunk> {
    const id = randomUUID();
    const answers = this.keys.relayAnswers(id);
    const aliveKey = this.keys.relayAnswer(id, 'alive');
    const queue = new EventQueue();
    const watcher = await this.watch(answers, 'relay answer watch', (e) => {
      queue.push(e);
    });
    let lease: KeptLease | undefined;
    try {
      lease = await KeptLease.grant(this.conn, REQUEST_TTL_S, `output request ${id}`, 'relay request');
      const leaseId = lease.id;
      await this.conn.txn('relay request', {
        success: [ops.put(this.keys.relayRequest(machine, id), JSON.stringify(request), leaseId)],
      });
      let alive = false;
      let next = 0;
      const early = new Map<number, OutputChunk>();
      for (;;) {
        const event = await queue.next(alive ? undefined : RELAY_FIRST_ANSWER_MS, signal);
        if (signal.aborted) return;
        if (event === undefined) throw noAnswer(machine, `did not answer within ${RELAY_FIRST_ANSWER_MS} ms`);
        const key = event.kv.key.toString();
        if (key === aliveKey) {
          if (event.type === 'put') alive = true;
          else throw noAnswer(machine, 'stopped answering (its fleetd ended before the answer did)');
          continue;
        }
        if (event.type !== 'put') continue;
        const seq = Number(key.slice(answers.length));
        const chunk = decodeChunk(event.kv.value.toString());
        if (!Number.isInteger(seq) || chunk === undefined)
          throw noAnswer(machine, `sent a malformed answer at ${key}`);
        alive = true;
        early.set(seq, chunk);
        for (let c = early.get(next); c !== undefined; c = early.get(next)) {
          early.delete(next);
          next++;
          yield c;
          if (c.kind !== 'data') return;
        }
      }
    } finally {
      this.cancel(watcher);
      const held = lease;
      void (async () => {
        try {
          await held?.revoke('relay request done');
          await this.conn.txn('relay answer cleanup', { success: [ops.deletePrefix(answers)] });
        } catch (err) {
          // Both vanish with their leases anyway.
          this.conn.logger.debug('relay cleanup failed', { id, error: describeError(err) });
        }
      })();
    }
  }

  async serveOutput(machine: string, handler: OutputHandler): Promise<Subscription> {
    const prefix = this.keys.relayRequests(machine);
    const active = new Map<string, AbortController>();
    const log = this.conn.logger.child({ component: 'output-relay' });
    const watcher = await this.watch(prefix, 'relay request watch', (event) => {
      const id = event.kv.key.toString().slice(prefix.length);
      if (event.type === 'delete') {
        active.get(id)?.abort();
        return;
      }
      // A request is written once; a later put of the same key is not a new request.
      if (event.kv.create_revision !== event.kv.mod_revision || active.has(id)) return;
      const stop = new AbortController();
      active.set(id, stop);
      void this.answer(id, event.kv.value.toString(), handler, stop.signal, active.size > RELAY_MAX_ACTIVE)
        .catch((err: unknown) => {
          log.warn('relay answer failed', { id, error: describeError(err) });
        })
        .finally(() => active.delete(id));
    });
    return {
      close: async () => {
        this.cancel(watcher);
        for (const stop of active.values()) stop.abort();
        await Promise.resolve();
      },
    };
  }

  private async answer(
    id: string,
    text: string,
    handler: OutputHandler,
    signal: AbortSignal,
    tooMany: boolean,
  ): Promise<void> {
    const lease = await KeptLease.grant(this.conn, ANSWER_TTL_S, `output answer ${id}`, 'relay answer');
    let seq = 0;
    const put = (chunk: OutputChunk): Promise<unknown> =>
      this.conn.txn('relay answer', {
        success: [ops.put(this.keys.relayAnswer(id, seq++), encodeChunk(chunk), lease.id)],
      });
    const batcher = new ChunkBatcher(async (piece) => {
      if (!signal.aborted) await put({ kind: 'data', text: piece });
    });
    try {
      await this.conn.txn('relay answer', {
        success: [ops.put(this.keys.relayAnswer(id, 'alive'), '1', lease.id)],
      });
      let last: OutputChunk;
      try {
        if (tooMany) throw new Error(`too many requests at once (at most ${RELAY_MAX_ACTIVE})`);
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        const request = checkOutputRequest(parsed);
        const code = await handler(
          request,
          (t) => {
            batcher.write(t);
          },
          signal,
        );
        last = { kind: 'exit', code };
      } catch (err) {
        last = { kind: 'error', message: describeError(err) };
      }
      if (signal.aborted) return;
      await batcher.flush();
      await put(last);
    } finally {
      batcher.discard();
      // Not revoked: the requester may still be reading. The chunks expire with the lease.
      lease.halt();
    }
  }
}

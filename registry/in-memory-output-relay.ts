import {
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
import { describeError } from '../lib/errors.js';

/**
 * The output relay within one process (for the in-memory registry): a request goes straight to
 * the handler serving its machine, through the same checks and the same chunk order as the relay
 * through etcd. A machine nobody serves answers nothing, so the requester fails after
 * RELAY_FIRST_ANSWER_MS, or at once with `unreachable` set (a test's fault control).
 */
export class InMemoryOutputRelay implements OutputRelay {
  private readonly handlers = new Map<string, { handler: OutputHandler; active: number }>();
  /** Machines whose requests fail at once, as if their fleetd were gone. */
  readonly unreachable = new Set<string>();

  async *requestOutput(
    machine: string,
    request: OutputRequest,
    signal: AbortSignal,
  ): AsyncIterable<OutputChunk> {
    const served = this.handlers.get(machine);
    if (served === undefined || this.unreachable.has(machine)) {
      if (!this.unreachable.has(machine)) await abortableDelay(RELAY_FIRST_ANSWER_MS, signal);
      throw noAnswer(machine, `did not answer within ${RELAY_FIRST_ANSWER_MS} ms`);
    }
    const chunks: OutputChunk[] = [];
    let wake: (() => void) | undefined;
    const push = (c: OutputChunk): void => {
      chunks.push(c);
      wake?.();
    };
    const stop = new AbortController();
    const onAbort = (): void => {
      stop.abort();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    served.active++;
    void (async () => {
      try {
        if (served.active > RELAY_MAX_ACTIVE)
          throw new Error(`too many requests at once (at most ${RELAY_MAX_ACTIVE})`);
        // The same round trip as through etcd: what the target sees is what JSON carries.
        const checked = checkOutputRequest(JSON.parse(JSON.stringify(request)));
        const code = await served.handler(
          checked,
          (text) => {
            push({ kind: 'data', text });
          },
          stop.signal,
        );
        push({ kind: 'exit', code });
      } catch (err) {
        push({ kind: 'error', message: describeError(err) });
      } finally {
        served.active--;
      }
    })();
    try {
      for (;;) {
        const chunk = chunks.shift();
        if (chunk === undefined) {
          if (signal.aborted) return;
          await new Promise<void>((resolve) => {
            wake = resolve;
            signal.addEventListener(
              'abort',
              () => {
                resolve();
              },
              { once: true },
            );
          });
          wake = undefined;
          continue;
        }
        if (chunk.kind === 'data' && chunk.text === '') continue;
        yield chunk;
        if (chunk.kind !== 'data') return;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      stop.abort();
    }
  }

  serveOutput(machine: string, handler: OutputHandler): Promise<Subscription> {
    const entry = { handler, active: 0 };
    this.handlers.set(machine, entry);
    return Promise.resolve({
      close: () => {
        if (this.handlers.get(machine) === entry) this.handlers.delete(machine);
        return Promise.resolve();
      },
    });
  }
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

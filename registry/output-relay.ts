import { FleetError, describeError } from '../lib/errors.js';
import type { Subscription } from './registry.js';

/**
 * Reading a unit's output on another machine without ssh: `fleetctl status` and `journal` ask
 * any fleetd's API, and that fleetd relays the request to the fleetd of the unit's machine, which
 * runs `systemctl status` or `journalctl` there and streams the text back. Every fleetd already
 * talks to etcd, so the relay runs through it (etcd-output-relay.ts); fleetds need neither a TCP
 * API nor sshd.
 *
 * The request carries only data (a kind, a unit name and bounded numbers); the answering machine
 * decides what runs, with a fixed program and argv, never a shell (agent/unit-output.ts).
 */

/** What a requester asks a machine for. */
export type OutputRequest =
  | { readonly kind: 'status'; readonly unit: string }
  | {
      readonly kind: 'journal';
      readonly unit: string;
      /** How many recent lines, 0 to MAX_JOURNAL_LINES. */
      readonly lines: number;
      /** Keep streaming new entries until the requester goes away. */
      readonly follow: boolean;
      /** journalctl's `--output` mode, one of JOURNAL_OUTPUT_MODES. */
      readonly output: string;
    };

/** One piece of an answer, in order: text, then exactly one `exit` or `error` at the end. */
export type OutputChunk =
  | { readonly kind: 'data'; readonly text: string }
  | { readonly kind: 'exit'; readonly code: number }
  | { readonly kind: 'error'; readonly message: string };

/**
 * Produces an answer on the target machine: writes text through `write` and resolves with the
 * program's exit status. It must stop when `signal` aborts (the requester went away). A throw
 * becomes an `error` chunk carrying its message.
 */
export type OutputHandler = (
  request: OutputRequest,
  write: (text: string) => void,
  signal: AbortSignal,
) => Promise<number>;

/** The relay, as the API (requester) and the agent (responder) use it. */
export interface OutputRelay {
  /**
   * Asks `machine`'s fleetd for a unit's output and yields the answer as it arrives, ending after
   * the `exit` or `error` chunk. Aborting `signal` (or leaving the loop) withdraws the request, and
   * the target stops (a followed journal ends). Throws `MACHINE_UNREACHABLE` when the machine does
   * not start answering within `RELAY_FIRST_ANSWER_MS`, or stops answering mid-way (its fleetd died).
   */
  requestOutput(machine: string, request: OutputRequest, signal: AbortSignal): AsyncIterable<OutputChunk>;
  /**
   * Answers the requests addressed to `machine` with `handler`, until the subscription closes. At
   * most RELAY_MAX_ACTIVE requests run at once; more are answered with an error.
   */
  serveOutput(machine: string, handler: OutputHandler): Promise<Subscription>;
}

/** How long a requester waits for the target's first answer. */
export const RELAY_FIRST_ANSWER_MS = 5000;
/** How many requests one machine answers at once. */
export const RELAY_MAX_ACTIVE = 8;
/** The largest piece of text one chunk carries. */
export const RELAY_MAX_CHUNK_BYTES = 64 * 1024;
/** How often the target sends what it has (so at most 1000 / this chunks a second per request). */
export const RELAY_FLUSH_MS = 50;
/** Text waiting to be sent beyond this is dropped (with a note saying so): a bound on memory. */
export const RELAY_MAX_PENDING_BYTES = 1024 * 1024;
/** The most journal lines one request may ask for. */
export const MAX_JOURNAL_LINES = 100_000;
/** The journalctl output modes a request may name: text modes only. */
export const JOURNAL_OUTPUT_MODES: readonly string[] = [
  'short',
  'short-full',
  'short-iso',
  'short-iso-precise',
  'short-precise',
  'short-monotonic',
  'short-unix',
  'with-unit',
  'verbose',
  'json',
  'json-pretty',
  'json-sse',
  'json-seq',
  'cat',
];

/** The longest unit name a request may carry (systemd's limit). */
const MAX_UNIT_NAME_BYTES = 255;

function invalid(why: string): FleetError {
  return new FleetError('API_REQUEST_REJECTED', `invalid output request: ${why}`);
}

/**
 * Checks a request's shape and bounds; returns it with only the known fields. Throws
 * `API_REQUEST_REJECTED` naming the problem. The unit name's own rules are the answering agent's
 * to check (it knows systemd's), this only bounds its length.
 */
export function checkOutputRequest(value: unknown): OutputRequest {
  if (typeof value !== 'object' || value === null) throw invalid('not an object');
  const o = value as Record<string, unknown>;
  const unit = o.unit;
  if (typeof unit !== 'string' || unit === '' || Buffer.byteLength(unit) > MAX_UNIT_NAME_BYTES)
    throw invalid('unit must be a unit name');
  if (o.kind === 'status') return { kind: 'status', unit };
  if (o.kind !== 'journal') throw invalid('kind must be status or journal');
  const { lines, follow, output } = o;
  if (typeof lines !== 'number' || !Number.isInteger(lines) || lines < 0 || lines > MAX_JOURNAL_LINES)
    throw invalid(`lines must be a whole number from 0 to ${MAX_JOURNAL_LINES}`);
  if (typeof follow !== 'boolean') throw invalid('follow must be true or false');
  if (typeof output !== 'string' || !JOURNAL_OUTPUT_MODES.includes(output))
    throw invalid(`output must be one of ${JOURNAL_OUTPUT_MODES.join(', ')}`);
  return { kind: 'journal', unit, lines, follow, output };
}

/**
 * Collects a handler's writes into chunks of at most RELAY_MAX_CHUNK_BYTES, sent every
 * RELAY_FLUSH_MS through `send` (one at a time, in order). Text beyond RELAY_MAX_PENDING_BYTES
 * waiting to be sent is dropped and a note says how much.
 */
export class ChunkBatcher {
  private pending: string[] = [];
  private pendingBytes = 0;
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> = Promise.resolve();
  private failure: Error | undefined;

  constructor(private readonly send: (text: string) => Promise<void>) {}

  /** Queues text to send. */
  write(text: string): void {
    const bytes = Buffer.byteLength(text);
    if (this.pendingBytes + bytes > RELAY_MAX_PENDING_BYTES) {
      this.dropped += bytes;
      return;
    }
    this.pending.push(text);
    this.pendingBytes += bytes;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flushOnce();
    }, RELAY_FLUSH_MS);
  }

  private take(): string {
    let text = this.pending.join('');
    this.pending = [];
    this.pendingBytes = 0;
    if (this.dropped > 0) {
      text += `\n[fleetd: ${this.dropped} bytes of output dropped: more than the relay carries]\n`;
      this.dropped = 0;
    }
    return text;
  }

  private flushOnce(): void {
    const text = this.take();
    if (text === '') return;
    this.sending = this.sending.then(async () => {
      for (const piece of splitUtf8(text, RELAY_MAX_CHUNK_BYTES)) {
        if (this.failure !== undefined) return;
        try {
          await this.send(piece);
        } catch (err) {
          this.failure = err instanceof Error ? err : new Error(describeError(err));
        }
      }
    });
  }

  /** Sends everything queued; rejects with the first failed send. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flushOnce();
    await this.sending;
    if (this.failure !== undefined) throw this.failure;
  }

  /** Drops what is queued and stops the timer. */
  discard(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = [];
    this.pendingBytes = 0;
  }
}

/** Splits text into pieces of at most `max` UTF-8 bytes, never inside a character. */
export function splitUtf8(text: string, max: number): string[] {
  if (Buffer.byteLength(text) <= max) return text === '' ? [] : [text];
  const pieces: string[] = [];
  let current = '';
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > max && current !== '') {
      pieces.push(current);
      current = '';
      bytes = 0;
    }
    current += ch;
    bytes += n;
  }
  if (current !== '') pieces.push(current);
  return pieces;
}

/** The error a requester gets when the machine does not answer. */
export function noAnswer(machine: string, why: string): FleetError {
  return new FleetError('MACHINE_UNREACHABLE', `machine ${machine} ${why}`, { retryable: true });
}

/* eslint-disable max-lines -- the etcd3 client set-up and its fault handling (member health, keepalive streams), which must see each other. */
import { performance } from 'node:perf_hooks';
import { rootCertificates } from 'node:tls';
import {
  Etcd3,
  EtcdLeaseInvalidError,
  GRPCInvalidArgumentError,
  Range,
  type ICompare,
  type IDuplexStream,
  type IKeyValue,
  type ILeaseKeepAliveRequest,
  type ILeaseKeepAliveResponse,
  type IOptions,
  type IRequestOp,
  type ITxnRequest,
  type ITxnResponse,
} from 'etcd3';
import { systemClock, type Clock } from '../lib/clock.js';
import { FleetError, describeError, isFleetError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { NO_METRICS, type MetricsHooks } from '../lib/metrics.js';
import { isCancellation, MemberHealth } from './etcd-member-health.js';
import { CorruptRecords } from './etcd-corrupt.js';
import { DEFAULT_PREFIX } from './keys.js';

/** TLS material for etcd, as PEM contents (not paths: the fleetd config loader reads the files). */
export interface EtcdTlsOptions {
  /** CA bundle that signed etcd's server certificate; the system roots when absent. */
  readonly ca?: string | Buffer;
  /** Client certificate chain, for etcd's client-cert authentication (with `key`). */
  readonly cert?: string | Buffer;
  /** Private key of `cert`. */
  readonly key?: string | Buffer;
}

/** etcd user credentials (etcd's `--user`). */
export interface EtcdAuthOptions {
  readonly username: string;
  readonly password: string;
}

/** How EtcdRegistry reaches etcd. Only `endpoints` is required. */
export interface EtcdRegistryOptions {
  /** Client URLs, `http://host:2379` (or `https://` with `tls`). */
  readonly endpoints: readonly string[];
  /** Key prefix of the whole layout (keys.ts). Default `/fleet/`. */
  readonly prefix?: string;
  /** Deadline of every etcd request, retries to other members included. Default 1500 ms. */
  readonly requestTimeoutMs?: number;
  /**
   * The longest pause between two dial attempts to an unreachable member (gRPC's reconnect
   * backoff cap), so a restarted etcd is noticed within about this long. Default 1000 ms.
   * (etcd3 1.1's own `dialTimeout` option is accepted but unused by the library.)
   */
  readonly dialTimeoutMs?: number;
  readonly tls?: EtcdTlsOptions;
  /**
   * etcd user name and password (etcd's role-based access control, `etcdctl auth enable`): the
   * client authenticates with them and sends its token with every call. Combine with TLS:
   * over http:// the password crosses the network in clear.
   */
  readonly auth?: EtcdAuthOptions;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Told of every request: operation, success and latency (lib/metrics.ts). Default: none. */
  readonly metrics?: MetricsHooks;
}

/** Request counts of one registry, for benchmarks ("etcd requests per placement"). */
export interface RegistryStats {
  /** Every request sent: transactions, ranges, lease grants and revokes, watch creations. */
  readonly requests: number;
  /** The same, per registry operation (`submitUnit`, `applySchedule`, `campaign`, ...). */
  readonly byOperation: Readonly<Record<string, number>>;
  /** Lease keepalives sent (not counted in `requests`: they ride one stream per lease). */
  readonly keepalives: number;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 1500;
const DEFAULT_DIAL_TIMEOUT_MS = 1000;
/** etcd's default `--max-txn-ops`: the most operations one side of a transaction may hold. */
export const MAX_TXN_OPS = 128;
/** Above etcd's enforcement minimum of 5 s, so etcd never answers with "too many pings". */
const GRPC_KEEPALIVE_MS = 10_000;
const GRPC_KEEPALIVE_TIMEOUT_MS = 5_000;

/** A LeaseKeepAlive stream: keepalive requests out, etcd's answers in. */
export type KeepaliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

/** gRPC call options (deadline), as etcd3's KV client takes them. */
export type CallOptions = NonNullable<Parameters<Etcd3['kv']['txn']>[1]>;

type WatchBackoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;

/** The part of etcd3's connection pool (`Etcd3.pool`, protected) that reports a failed stream. */
interface StreamFailureSink {
  markFailed(resource: unknown, error: Error): void;
}

/**
 * Keeps streams that were cancelled on our side from tearing down a member's channels. etcd3
 * reports every stream error to its pool, which closes all channels of the member (KV, lease,
 * watches) on a recoverable error, and counts a cancellation as one: closing the last watch of a
 * stream, or a lease keepalive stream given up after its deadline, would break every other watch
 * and keepalive of the client and make it reconnect. A cancellation says nothing about the
 * member, so it is not reported.
 */
function ignoreCancellations(client: Etcd3): void {
  const pool = (client as unknown as { pool?: Partial<StreamFailureSink> }).pool;
  const markFailed = pool?.markFailed;
  if (pool === undefined || typeof markFailed !== 'function') {
    throw new FleetError('INTERNAL', 'etcd3 has no connection pool to guard: its internals changed');
  }
  pool.markFailed = (resource: unknown, error: Error): void => {
    if (!isCancellation(error)) markFailed.call(pool, resource, error);
  };
}

/** Watch-stream reconnect delays: 100 ms doubling to 2 s (etcd3's default grows to 30 s). */
function watchBackoff(ms = 100): WatchBackoff {
  return { duration: ms, next: () => watchBackoff(Math.min(ms * 2, 2_000)) };
}

function pem(value: string | Buffer): Buffer {
  return typeof value === 'string' ? Buffer.from(value) : value;
}

function credentials(tls: EtcdTlsOptions | undefined): IOptions['credentials'] {
  if (tls === undefined) return undefined;
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new FleetError('INTERNAL', 'etcd TLS needs both a client certificate and its key, or neither');
  }
  return {
    rootCertificate: pem(tls.ca ?? rootCertificates.join('\n')),
    ...(tls.key === undefined ? {} : { privateKey: pem(tls.key) }),
    ...(tls.cert === undefined ? {} : { certChain: pem(tls.cert) }),
  };
}

/**
 * etcd's answer to a malformed request (a duplicate key in a transaction, too many operations):
 * a bug here, not an unreachable etcd, so retrying cannot help.
 */
function isRequestBug(err: unknown): boolean {
  return err instanceof GRPCInvalidArgumentError;
}

/** True when etcd said a lease does not exist (expired or revoked). */
export function isLeaseGone(err: unknown): boolean {
  return err instanceof EtcdLeaseInvalidError || (err instanceof FleetError && isLeaseGone(err.cause));
}

/**
 * The one etcd3 client of an EtcdRegistry, and the only path requests take: each gets a deadline,
 * is counted, and fails as a FleetError naming the operation (REGISTRY_UNAVAILABLE, retryable,
 * when etcd cannot be reached in time).
 */
export class EtcdConnection {
  readonly client: Etcd3;
  readonly prefix: string;
  readonly timeoutMs: number;
  readonly endpoints: readonly string[];
  readonly logger: Logger;
  readonly clock: Clock;
  /** Which members answer: etcd3 runs every call through it (etcd-member-health.ts). */
  readonly health: MemberHealth;
  /** Decodes what readers read, skipping and logging malformed records (etcd-corrupt.ts). */
  readonly corrupt: CorruptRecords;
  private readonly newClient: (hosts: readonly string[], pinned: boolean) => Etcd3;
  /** With several members: a client per member, for lease keepalive streams. */
  private readonly memberClients = new Map<string, Etcd3>();
  private requests = 0;
  private keepalives = 0;
  private readonly byOperation = new Map<string, number>();
  private readonly closing = new AbortController();
  private clientClosed = false;
  private readonly metrics: MetricsHooks;

  constructor(options: EtcdRegistryOptions) {
    if (options.endpoints.length === 0) {
      throw new FleetError('INTERNAL', 'EtcdRegistry needs at least one etcd endpoint');
    }
    this.endpoints = [...options.endpoints];
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    this.timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.logger = (options.logger ?? silentLogger).child({ component: 'etcd-registry' });
    this.clock = options.clock ?? systemClock;
    this.metrics = options.metrics ?? NO_METRICS;
    this.corrupt = new CorruptRecords(this.logger);
    const dialMs = options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    const timeoutMs = this.timeoutMs;
    const tlsCredentials = credentials(options.tls);
    this.health = new MemberHealth(this.clock, dialMs);
    this.newClient = (hosts, pinned) => {
      const client = new Etcd3({
        hosts: [...hosts],
        ...(tlsCredentials === undefined ? {} : { credentials: tlsCredentials }),
        ...(options.auth === undefined
          ? {}
          : { auth: { username: options.auth.username, password: options.auth.password } }),
        dialTimeout: dialMs,
        // The same options for every client of a member, so that gRPC shares their connections.
        grpcOptions: {
          'grpc.initial_reconnect_backoff_ms': Math.min(100, dialMs),
          'grpc.max_reconnect_backoff_ms': dialMs,
          'grpc.keepalive_time_ms': GRPC_KEEPALIVE_MS,
          'grpc.keepalive_timeout_ms': GRPC_KEEPALIVE_TIMEOUT_MS,
        },
        // Streams (watches, lease keepalives) live for long; every unary call gets a deadline.
        defaultCallOptions: (context) => (context.isStream ? {} : { deadline: grpcDeadline(timeoutMs) }),
        faultHandling: {
          host: (member) => this.health.policy(member, pinned),
          watchBackoff: watchBackoff(),
        },
      });
      ignoreCancellations(client);
      return client;
    };
    this.client = this.newClient(this.endpoints, false);
  }

  /**
   * Opens a LeaseKeepAlive stream on a member that answers, other than `avoid` when another one
   * does (MemberHealth.pick); says which member it went to. With several members it goes through
   * a client of that member alone (gRPC shares the connection with the main client's).
   */
  async openKeepaliveStream(avoid?: string): Promise<{ stream: KeepaliveStream; member: string }> {
    if (this.closed) throw this.closedError('keepalive');
    const member = this.health.pick(avoid);
    let client = this.endpoints.length === 1 ? this.client : this.memberClients.get(member);
    if (client === undefined) {
      client = this.newClient([member], true);
      this.memberClients.set(member, client);
    }
    return { stream: await client.leaseClient.leaseKeepAlive(), member };
  }

  /** Aborts when the registry starts closing: loops and waits end on it. */
  get signal(): AbortSignal {
    return this.closing.signal;
  }

  /** True once `beginClose()` ran: public calls are refused, clean-up requests still go out. */
  get isClosing(): boolean {
    return this.closing.signal.aborted;
  }

  /** True once the client is closed: no request goes out any more. */
  get closed(): boolean {
    return this.clientClosed;
  }

  /** Throws the closed error when the registry is closing, for the start of public calls. */
  assertOpen(operation: string): void {
    if (this.isClosing) throw this.closedError(operation);
  }

  /** A snapshot of the request counters. */
  stats(): RegistryStats {
    return {
      requests: this.requests,
      byOperation: Object.fromEntries(this.byOperation),
      keepalives: this.keepalives,
    };
  }

  countKeepalive(): void {
    this.keepalives++;
  }

  /** Call options with one absolute deadline, shared by etcd3's retries of the call. */
  callOptions(): CallOptions {
    return { deadline: grpcDeadline(this.timeoutMs) };
  }

  /** The error every call makes after `close()`. */
  closedError(operation: string): FleetError {
    return new FleetError('REGISTRY_UNAVAILABLE', `etcd ${operation}: registry is closed`, {
      retryable: false,
    });
  }

  /**
   * Runs one etcd request for `operation`: counts it, bounds it by the request timeout (the gRPC
   * deadline, and a timer in case a library path ignores it) and maps failures.
   */
  async request<T>(operation: string, send: (options: CallOptions) => Promise<T>): Promise<T> {
    if (this.closed) throw this.closedError(operation);
    this.requests++;
    this.byOperation.set(operation, (this.byOperation.get(operation) ?? 0) + 1);
    let timer: NodeJS.Timeout | undefined;
    const expiry = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs + 250);
    });
    const started = performance.now();
    let ok = false;
    try {
      const result = await Promise.race([send(this.callOptions()), expiry]);
      ok = true;
      return result;
    } catch (err) {
      throw this.failure(operation, err);
    } finally {
      clearTimeout(timer);
      this.metrics.etcdRequest(operation, ok, (performance.now() - started) / 1000);
    }
  }

  /** Maps an etcd3 failure of `operation` to a FleetError. */
  failure(operation: string, err: unknown): FleetError {
    if (isFleetError(err)) return err;
    if (this.closed) return this.closedError(operation);
    if (isRequestBug(err)) {
      return new FleetError('INTERNAL', `etcd rejected the ${operation} request: ${describeError(err)}`, {
        cause: err,
      });
    }
    const lease = err instanceof EtcdLeaseInvalidError;
    return new FleetError(
      'REGISTRY_UNAVAILABLE',
      `etcd ${operation} failed (endpoints ${this.endpoints.join(', ')}, timeout ${this.timeoutMs} ms): ` +
        describeError(err),
      { retryable: !lease, cause: err },
    );
  }

  /** One transaction. */
  txn(operation: string, request: ITxnRequest): Promise<ITxnResponse> {
    return this.request(operation, (options) => this.client.kv.txn(request, options));
  }

  /**
   * Reads several keys or prefixes at one revision: a transaction without comparisons always takes
   * its success branch. Returns the key-values of each read, in order.
   */
  async read(operation: string, reads: readonly IRequestOp[]): Promise<IKeyValue[][]> {
    const response = await this.txn(operation, { success: [...reads] });
    return reads.map((_, i) => rangeAt(response, i));
  }

  /** Stops loops and refuses public calls, leaving the client open for clean-up requests. */
  beginClose(): void {
    this.closing.abort();
  }

  /** Closes the client; every later request fails. Idempotent. */
  close(): void {
    this.beginClose();
    if (this.clientClosed) return;
    this.clientClosed = true;
    this.client.close();
    for (const client of this.memberClients.values()) client.close();
  }
}

// Request building -------------------------------------------------------------------------------

const bytes = (s: string): Buffer => Buffer.from(s, 'utf8');

/** The request operations EtcdRegistry composes transactions from. */
export const ops = {
  put(key: string, value: string, lease?: string): IRequestOp {
    return {
      request_put: { key: bytes(key), value: bytes(value), ...(lease === undefined ? {} : { lease }) },
    };
  },
  delete(key: string): IRequestOp {
    return { request_delete_range: { key: bytes(key) } };
  },
  deletePrefix(prefix: string): IRequestOp {
    return { request_delete_range: { key: bytes(prefix), range_end: Range.prefix(prefix).end } };
  },
  get(key: string): IRequestOp {
    return { request_range: { key: bytes(key) } };
  },
  getPrefix(prefix: string): IRequestOp {
    return { request_range: { key: bytes(prefix), range_end: Range.prefix(prefix).end } };
  },
};

/** The comparisons EtcdRegistry guards transactions with. */
export const compare = {
  /** The key does not exist (never created, or deleted since). */
  absent(key: string): ICompare {
    return { key: bytes(key), target: 'Create', result: 'Equal', create_revision: 0 };
  },
  /** The key exists. */
  present(key: string): ICompare {
    return { key: bytes(key), target: 'Version', result: 'Greater', version: 0 };
  },
  created(key: string, revision: string): ICompare {
    return { key: bytes(key), target: 'Create', result: 'Equal', create_revision: revision };
  },
  modified(key: string, revision: string): ICompare {
    return { key: bytes(key), target: 'Mod', result: 'Equal', mod_revision: revision };
  },
  value(key: string, value: string): ICompare {
    return { key: bytes(key), target: 'Value', result: 'Equal', value: bytes(value) };
  },
};

/** The key-values of the `index`-th response of a transaction, which must be a range. */
export function rangeAt(response: ITxnResponse, index: number): IKeyValue[] {
  const range = response.responses[index]?.response_range;
  if (range === undefined) {
    throw new FleetError('INTERNAL', `etcd transaction response ${index} is not a range`);
  }
  return range.kvs;
}

/** How many keys the `index`-th response of a transaction deleted. */
export function deletedAt(response: ITxnResponse, index: number): number {
  const deleted = response.responses[index]?.response_delete_range;
  if (deleted === undefined) {
    throw new FleetError('INTERNAL', `etcd transaction response ${index} is not a delete`);
  }
  return Number(deleted.deleted);
}

export function keyOf(kv: IKeyValue): string {
  return kv.key.toString('utf8');
}

export function valueOf(kv: IKeyValue): string {
  return kv.value.toString('utf8');
}

/** The single key-value of a one-key read, or undefined. */
export function single(kvs: readonly IKeyValue[]): IKeyValue | undefined {
  return kvs[0];
}

/**
 * A gRPC deadline `ms` from now. gRPC compares deadlines with the wall clock, so this reads the
 * system clock even where an injected clock drives the rest of the connection (a manual clock in a
 * test would otherwise set deadlines in the past).
 */
function grpcDeadline(ms: number): Date {
  return new Date(systemClock.now() + ms);
}

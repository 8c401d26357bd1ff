import * as http from 'node:http';
import * as https from 'node:https';
import { performance } from 'node:perf_hooks';
import { FleetError, describeError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { NO_METRICS, type MetricsHooks } from '../../lib/metrics.js';
import { VERSION } from '../../lib/version.js';
import type { ApiContext, ApiRegistry, MetricsScrape } from './context.js';
import { ApiError, classifyFailure, errorBody, UNAVAILABLE_MESSAGE } from './errors.js';
import { DEFAULT_TOKEN_LIMIT } from './pagination.js';
import { readRequestBody, type ApiRequest } from './request.js';
import { JSON_CONTENT_TYPE, type ApiResponse } from './response.js';
import { mayWrite, READ_METHODS, WRITE, type ApiAccess, type ApiUnixListenOptions } from './access.js';
import { route, type Route } from './router.js';
import {
  invalidTlsMaterial,
  listen,
  isLoopbackHost,
  plainHttpRefused,
  serverTlsOptions,
  type ApiTlsOptions,
} from './tcp.js';
import { listenUnixSocket, removeUnixSocketFile, type UnixSocketFile } from './unix-socket.js';

export type { ApiTlsOptions } from './tcp.js';
export type { ApiAccess, ApiUnixListenOptions } from './access.js';

/** How the API server is built. */
export interface ApiServerOptions {
  /**
   * The registry the API reads and writes: the methods it uses of the unit, schedule, machine
   * and unit-state stores. A full `Registry` fits.
   */
  readonly registry: ApiRegistry;
  readonly logger: Logger;
  /** Page size of the list endpoints (fleet's `token_limit`), 1 to 65535. Default 100. */
  readonly tokenLimit?: number;
  /** The largest request body accepted; larger ones get 413. Default 1 MiB. */
  readonly maxBodyBytes?: number;
  /**
   * False while fleetd cannot serve (not yet registered in etcd, or re-registering after losing
   * it): then every request gets 503 `fleet server unable to communicate with etcd`, as in fleet.
   * Default: always ready.
   */
  readonly ready?: () => boolean;
  /** How long `close()` waits for requests in flight before dropping connections. Default 5 s. */
  readonly closeTimeoutMs?: number;
  /** Told of every request answered (route, method, status, duration). Default: none. */
  readonly metrics?: MetricsHooks;
  /** Renders the Prometheus metrics `GET /metrics` serves; without it `/metrics` is 404. */
  readonly scrape?: () => Promise<MetricsScrape>;
}

/** A TCP listener: TLS with client certificates, or plain HTTP on loopback when allowed. */
export interface ApiTcpListenOptions {
  readonly host: string;
  /** 0 picks a free port; `listenTcp` resolves with the port taken. */
  readonly port: number;
  readonly tls?: ApiTlsOptions;
  /** Allows plain HTTP, without TLS, when `host` is a loopback address (for tests and local tools). */
  readonly allowPlainHttpOnLoopback?: boolean;
  /** Default `write`; `writers` needs `tls`. */
  readonly access?: ApiAccess;
}

/** The servers behind listeners: plain HTTP (unix, loopback TCP, inherited fds) or HTTPS. */
type WebServer = http.Server | https.Server;

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const DEFAULT_CLOSE_TIMEOUT_MS = 5000;
const MAX_TOKEN_LIMIT = 0xffff;
/** fleet sent no Retry-After; a short hint costs nothing and helps generic clients. */
const RETRY_AFTER_SECONDS = '1';

/** The path and query of a request target (origin form, or absolute form from a proxy). */
function splitTarget(target: string): { path: string; query: URLSearchParams } {
  let rest = target;
  if (!target.startsWith('/')) {
    try {
      const url = new URL(target);
      rest = url.pathname + url.search;
    } catch {
      // Not a URL either (e.g. `*`): route it as it is, to a 404.
      rest = target;
    }
  }
  const q = rest.indexOf('?');
  return q === -1
    ? { path: rest, query: new URLSearchParams() }
    : { path: rest.slice(0, q), query: new URLSearchParams(rest.slice(q + 1)) };
}

/**
 * fleet's HTTP API v1 (docs/fleet-compat.md §8) over a unix socket, TCP (TLS with client certificates, or
 * plain HTTP on loopback) and systemd-activated sockets. Every response carries
 * `Server: fleetd/<version>`; every request is logged at debug with method, path, status and
 * duration. A request never crashes the server: failures become fleet's error JSON (503 when the
 * registry is unreachable, 500 with an empty message for anything unexpected).
 */
export class ApiServer {
  private readonly ctx: ApiContext;
  private readonly log: Logger;
  private readonly maxBodyBytes: number;
  private readonly closeTimeoutMs: number;
  private readonly ready: () => boolean;
  private readonly metrics: MetricsHooks;
  private readonly servers: WebServer[] = [];
  private readonly socketFiles: UnixSocketFile[] = [];
  /** Aborts when the server starts closing: streamed answers (follows) end on it. */
  private readonly closingSignal = new AbortController();
  private closing: Promise<void> | undefined;

  /** Throws `CONFIG_INVALID` for a token limit outside 1..65535 or a non-positive body limit. */
  constructor(options: ApiServerOptions) {
    const tokenLimit = options.tokenLimit ?? DEFAULT_TOKEN_LIMIT;
    if (!Number.isInteger(tokenLimit) || tokenLimit < 1 || tokenLimit > MAX_TOKEN_LIMIT) {
      throw new FleetError(
        'CONFIG_INVALID',
        `token_limit must be a whole number from 1 to 65535, got ${tokenLimit}`,
      );
    }
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    if (!Number.isInteger(this.maxBodyBytes) || this.maxBodyBytes < 1) {
      throw new FleetError(
        'CONFIG_INVALID',
        `maxBodyBytes must be a positive whole number, got ${this.maxBodyBytes}`,
      );
    }
    this.closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.ready = options.ready ?? (() => true);
    this.log = options.logger.child({ component: 'api' });
    this.metrics = options.metrics ?? NO_METRICS;
    this.ctx = {
      registry: options.registry,
      tokenLimit,
      logger: this.log,
      ...(options.scrape === undefined ? {} : { scrape: options.scrape }),
    };
  }

  /**
   * Serves on the unix socket `path` with file mode `mode` (default 0660, as fleet's socket unit
   * had). A stale socket file nobody answers on is removed first; a path that is not a socket, or
   * that a live process serves, is refused with `API_LISTEN_FAILED`.
   */
  async listenUnix(path: string, options: number | ApiUnixListenOptions = {}): Promise<void> {
    this.assertOpen();
    const { mode = 0o660, group, access = WRITE } = typeof options === 'number' ? { mode: options } : options;
    if (access.kind === 'writers') {
      throw new FleetError('CONFIG_INVALID', 'a unix socket has no client certificates to list writers by');
    }
    const server = this.plainServer(access);
    const file = await listenUnixSocket(server, path, mode, group);
    this.adopt(server);
    this.socketFiles.push(file);
    this.log.info('api listening', {
      socket: path,
      mode: mode.toString(8),
      group: group ?? '',
      access: access.kind,
    });
  }

  /**
   * Serves on TCP. With `tls`, clients must present a certificate signed by `tls.ca`. Without it,
   * plain HTTP is allowed only with `allowPlainHttpOnLoopback` on a loopback host; anything else
   * throws `CONFIG_INVALID`. Resolves with the port (useful with port 0).
   */
  async listenTcp(options: ApiTcpListenOptions): Promise<{ port: number }> {
    this.assertOpen();
    let server: WebServer;
    if (options.tls !== undefined) {
      const tlsOptions = serverTlsOptions(options.tls);
      try {
        server = https.createServer(
          { ...tlsOptions, requireHostHeader: false },
          this.handler(options.access ?? WRITE),
        );
      } catch (err) {
        throw invalidTlsMaterial(err);
      }
      server.on('tlsClientError', (err: Error) => {
        this.log.debug('api tls handshake failed', { error: describeError(err) });
      });
    } else {
      const allowed = options.allowPlainHttpOnLoopback === true && (await isLoopbackHost(options.host));
      if (!allowed)
        throw plainHttpRefused(options.host, options.port, options.allowPlainHttpOnLoopback === true);
      if (options.access?.kind === 'writers') {
        throw new FleetError('CONFIG_INVALID', 'listing writers by certificate needs TLS on the TCP API');
      }
      server = this.plainServer(options.access ?? WRITE);
    }
    await listen(server, { host: options.host, port: options.port }, `tcp ${options.host}:${options.port}`);
    this.adopt(server);
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : options.port;
    this.log.info('api listening', { host: options.host, port, tls: options.tls !== undefined });
    if (options.tls === undefined) {
      this.log.warn(
        'API served over plain HTTP without authentication: every local user and every container in this network namespace can reach it',
        { host: options.host, port, access: 'full control of the cluster' },
      );
    }
    return { port };
  }

  /**
   * Serves on an inherited listening socket (systemd socket activation: `LISTEN_FDS`, fds from 3),
   * as fleet did. What the socket is (unix or TCP) is the socket unit's business.
   */
  async listenFd(fd: number): Promise<void> {
    this.assertOpen();
    const server = this.plainServer(WRITE);
    await listen(server, { fd }, `fd ${fd}`);
    this.adopt(server);
    this.log.info('api listening', { fd });
  }

  /**
   * Stops accepting, closes idle keep-alive connections, lets requests in flight finish (their
   * responses say `Connection: close`) for up to `closeTimeoutMs`, then drops what is left, and
   * removes the unix socket files. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closingSignal.abort();
    await Promise.all(this.servers.map((s) => this.closeServer(s)));
    await Promise.all(
      this.socketFiles.map((file) =>
        removeUnixSocketFile(file).catch((err: unknown) => {
          this.log.warn('api socket file not removed', { socket: file.path, error: describeError(err) });
        }),
      ),
    );
    this.log.info('api closed');
  }

  private closeServer(web: WebServer): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.log.warn('api close timed out; dropping connections', { timeoutMs: this.closeTimeoutMs });
        web.closeAllConnections();
      }, this.closeTimeoutMs);
      web.close(() => {
        clearTimeout(timer);
        resolve();
      });
      web.closeIdleConnections();
    });
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new FleetError('API_LISTEN_FAILED', 'The API server is closed');
  }

  private plainServer(access: ApiAccess): http.Server {
    // Host is optional: local clients on the unix socket need not invent one.
    return http.createServer({ requireHostHeader: false }, this.handler(access));
  }

  /** The request listener of a listener with this access. */
  private handler(access: ApiAccess): (req: http.IncomingMessage, res: http.ServerResponse) => void {
    return (req, res) => {
      this.serve(req, res, mayWrite(access, req)).catch((err: unknown) => {
        // Only a bug in writing the response gets here; the connection is all we can drop.
        this.log.error('api response failed', { error: describeError(err) });
        res.destroy();
      });
    };
  }

  /** Keeps a listening server for `close()`; one that started listening after close began is closed. */
  private adopt(server: WebServer): void {
    if (this.closing !== undefined) {
      server.close();
      throw new FleetError('API_LISTEN_FAILED', 'The API server was closed while it started listening');
    }
    this.servers.push(server);
    server.on('error', (err) => {
      this.log.error('api listener failed', { error: describeError(err) });
    });
  }

  /**
   * Serves one request. Access control is decided here, once for every route (today's and those
   * added later): a client that may not write gets 403 for any method but GET and HEAD, before
   * the request is routed or its body read.
   */
  private async serve(req: http.IncomingMessage, res: http.ServerResponse, canWrite: boolean): Promise<void> {
    const started = performance.now();
    const method = req.method ?? '';
    const { path, query } = splitTarget(req.url ?? '/');
    let response: ApiResponse;
    let resource = 'unknown';
    let routed: Route | undefined;
    let routeFailure: unknown;
    try {
      if (!canWrite && !READ_METHODS.has(method)) {
        throw new ApiError(
          403,
          `read-only access: this listener or client certificate may only GET, not ${method}`,
        );
      }
      routed = route(method, path);
      resource = routed.resource;
    } catch (err) {
      routeFailure = err;
    }
    try {
      // Metrics are this process's own: they are served while etcd is away too.
      if (!this.ready() && resource !== 'metrics') throw new ApiError(503, UNAVAILABLE_MESSAGE);
      if (routed === undefined) throw routeFailure;
      const { handler } = routed;
      const gone = new AbortController();
      res.once('close', () => {
        if (!res.writableFinished) gone.abort();
      });
      const request: ApiRequest = {
        method,
        query,
        headers: req.headersDistinct,
        body: () => readRequestBody(req, this.maxBodyBytes),
        signal: AbortSignal.any([gone.signal, this.closingSignal.signal]),
      };
      response = await handler(this.ctx, request);
    } catch (err) {
      response = this.failure(err, method, path);
    }
    if (response.stream !== undefined) await this.writeStream(res, response, response.stream);
    else this.write(res, response);
    const seconds = (performance.now() - started) / 1000;
    this.metrics.apiRequest(resource, method, response.status, seconds);
    const durationMs = Math.round(seconds * 1000 * 1000) / 1000;
    this.log.debug('api request', { method, path, status: response.status, durationMs });
  }

  private failure(err: unknown, method: string, path: string): ApiResponse {
    if (err instanceof ApiError) return errorResponse(err.status, err.message, err.headers);
    const { status, message } = classifyFailure(err);
    if (status === 503)
      this.log.warn('api registry unavailable', { method, path, error: describeError(err) });
    else this.log.error('api request failed', { method, path, error: describeError(err) });
    return errorResponse(status, message);
  }

  /** Writes a streamed body as it comes (chunked), stopping when the client goes away. */
  private async writeStream(
    res: http.ServerResponse,
    response: ApiResponse,
    stream: AsyncIterable<string>,
  ): Promise<void> {
    const headers: Record<string, string | number> = { Server: `fleetd/${VERSION}`, ...response.headers };
    if (this.closing !== undefined) headers.Connection = 'close';
    res.writeHead(response.status, headers);
    res.flushHeaders();
    try {
      for await (const piece of stream) {
        if (res.destroyed) break;
        if (!res.write(piece))
          await new Promise((resolve) => res.once('drain', resolve).once('close', resolve));
      }
    } catch (err) {
      this.log.warn('api stream failed', { error: describeError(err) });
    }
    // When the server is closing, the connection goes too (it would idle out only later).
    const socket = res.socket;
    res.end(() => {
      if (this.closing !== undefined) socket?.end();
    });
  }

  private write(res: http.ServerResponse, response: ApiResponse): void {
    if (res.headersSent || res.writableEnded) return;
    const headers: Record<string, string | number> = { Server: `fleetd/${VERSION}`, ...response.headers };
    if (response.body !== undefined) headers['Content-Length'] = Buffer.byteLength(response.body);
    else if (response.status !== 204 && response.status !== 304) headers['Content-Length'] = 0;
    if (this.closing !== undefined) headers.Connection = 'close';
    res.writeHead(response.status, headers);
    res.end(response.body);
  }
}

function errorResponse(
  status: number,
  message: string,
  extra: Readonly<Record<string, string>> = {},
): ApiResponse {
  const headers: Record<string, string> = { 'Content-Type': JSON_CONTENT_TYPE, ...extra };
  if (status === 503) headers['Retry-After'] = RETRY_AFTER_SECONDS;
  return { status, body: errorBody(status, message), headers };
}

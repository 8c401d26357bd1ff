import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { FleetError, describeError } from '../lib/errors.js';

/**
 * How fleetctl reaches fleetd's HTTP API: the endpoint (a unix socket or an http(s) URL), one
 * keep-alive connection pool per run, TLS files, an optional SSH tunnel, and a deadline on every
 * request. fleet's API client ignored `--request-timeout`; ours applies it to each request.
 */

/** A parsed `--endpoint`. `display` is how messages name it (the URL the user gave). */
export type Endpoint =
  | { readonly kind: 'unix'; readonly socketPath: string; readonly display: string }
  | { readonly kind: 'http' | 'https'; readonly url: URL; readonly display: string };

/** The endpoint and, when the user listed several, the warning fleet printed. */
export interface ParsedEndpoint {
  readonly endpoint: Endpoint;
  readonly warning?: string;
}

/**
 * Parses `--endpoint` as fleet's API driver does: only the first of a comma-separated list is used
 * (with a warning); `unix://` and `file://` name a socket by the URL path and must have no host;
 * `http://` and `https://` are used as the base of `/fleet/v1/...`. Throws `USAGE_INVALID`.
 */
export function parseEndpoint(value: string): ParsedEndpoint {
  const all = value.split(',');
  const first = (all[0] ?? '').trim();
  const warning =
    all.length > 1 ? `multiple endpoints provided but only the first (${first}) is used` : undefined;
  const endpoint = parseOne(first);
  return warning === undefined ? { endpoint } : { endpoint, warning };
}

function parseOne(raw: string): Endpoint {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(raw)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    throw new FleetError(
      'USAGE_INVALID',
      `URL scheme undefined in endpoint ${JSON.stringify(raw)}: use unix:///path/to/socket or http(s)://host:port`,
    );
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch (err) {
    throw new FleetError('USAGE_INVALID', `invalid endpoint ${JSON.stringify(raw)}: ${describeError(err)}`);
  }
  switch (scheme) {
    case 'unix':
    case 'file': {
      if (url.host !== '') {
        throw new FleetError(
          'USAGE_INVALID',
          `unable to connect to host ${JSON.stringify(url.host)} with scheme ${JSON.stringify(scheme)}: ` +
            `a socket endpoint needs three slashes, e.g. ${scheme}:///var/run/fleet.sock`,
        );
      }
      const socketPath = decodeURIComponent(url.pathname);
      if (socketPath === '' || socketPath === '/') {
        throw new FleetError('USAGE_INVALID', `endpoint ${JSON.stringify(raw)} names no socket path`);
      }
      return { kind: 'unix', socketPath, display: raw };
    }
    case 'http':
    case 'https':
      return { kind: scheme, url, display: raw };
    default:
      throw new FleetError(
        'USAGE_INVALID',
        `unsupported URL scheme ${JSON.stringify(scheme)} in endpoint ${JSON.stringify(raw)}: ` +
          'use unix://, http:// or https://',
      );
  }
}

/** The TLS files given with `--ca-file`, `--cert-file` and `--key-file`. */
export interface TlsFiles {
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
}

/** Opens a byte stream to the API through an SSH tunnel (see ssh.ts); one per connection. */
export type TunnelDialer = () => Duplex;

/** How a Transport reaches fleetd. */
export interface TransportOptions {
  readonly endpoint: Endpoint;
  /** Deadline for one request, connect to last byte. */
  readonly timeoutMs: number;
  readonly tls?: TlsFiles;
  /** When set, every connection goes through this stream instead of a socket. */
  readonly tunnel?: TunnelDialer;
  /** Receives one line per request when `--debug` is on. */
  readonly debug?: (line: string) => void;
}

/** A raw HTTP response. */
export interface RawResponse {
  readonly status: number;
  readonly body: string;
}

/** An http.Agent whose connections are streams from the tunnel dialer. */
class TunnelAgent extends http.Agent {
  constructor(
    private readonly dial: TunnelDialer,
    private readonly secure: tls.ConnectionOptions | undefined,
  ) {
    super({ keepAlive: true, maxSockets: 4 });
  }

  override createConnection(): Duplex {
    const stream = this.dial();
    return this.secure === undefined ? stream : tls.connect({ ...this.secure, socket: stream });
  }

  // A tunnel stream is not a TCP socket: there is no TCP keep-alive to switch on, nor an event
  // loop reference to drop (the tunnel's child process is closed with the agent).
  override keepSocketAlive(): boolean {
    return true;
  }
}

function readTlsFile(flag: string, path: string | undefined): Buffer | undefined {
  if (path === undefined || path === '') return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new FleetError('USAGE_INVALID', `cannot read ${flag} ${path}: ${describeError(err)}`, {
      cause: err,
    });
  }
}

/**
 * Sends requests to one fleetd. Connection failures and timeouts become
 * `FleetError('API_UNREACHABLE')` with a message that names the endpoint and says that fleetd may
 * not be running; any HTTP status is returned as a value. `close()` drops pooled connections.
 */
export class Transport {
  private readonly agent: http.Agent;
  private readonly secure: tls.ConnectionOptions | undefined;

  constructor(private readonly options: TransportOptions) {
    const { endpoint } = options;
    if (endpoint.kind === 'https') {
      const files = options.tls ?? {};
      const ca = readTlsFile('--ca-file', files.caFile);
      const cert = readTlsFile('--cert-file', files.certFile);
      const key = readTlsFile('--key-file', files.keyFile);
      const host = endpoint.url.hostname.replace(/^\[|\]$/g, '');
      this.secure = {
        // SNI carries host names only (RFC 6066); Node warns when given an IP address.
        ...(isIP(host) === 0 ? { servername: host } : {}),
        ...(ca === undefined ? {} : { ca }),
        ...(cert === undefined ? {} : { cert }),
        ...(key === undefined ? {} : { key }),
      };
    }
    if (options.tunnel !== undefined) this.agent = new TunnelAgent(options.tunnel, this.secure);
    else if (endpoint.kind === 'https') this.agent = new https.Agent({ keepAlive: true, ...this.secure });
    else this.agent = new http.Agent({ keepAlive: true });
  }

  /** The endpoint as the user gave it, for messages. */
  get endpointName(): string {
    return this.options.endpoint.display;
  }

  /** Where and how a request to `path` goes: the endpoint's base path, socket or host, and scheme. */
  private prepare(
    method: string,
    path: string,
    headers: http.OutgoingHttpHeaders,
  ): { fullPath: string; requestOptions: http.RequestOptions; send: typeof http.request } {
    const { endpoint } = this.options;
    const base = endpoint.kind === 'unix' ? '' : endpoint.url.pathname.replace(/\/+$/, '');
    const fullPath = base + path;
    const requestOptions: http.RequestOptions = { method, path: fullPath, headers, agent: this.agent };
    if (endpoint.kind === 'unix') {
      requestOptions.socketPath = endpoint.socketPath;
      requestOptions.host = 'localhost';
    } else {
      requestOptions.host = endpoint.url.hostname.replace(/^\[|\]$/g, '');
      requestOptions.port = endpoint.url.port === '' ? undefined : Number(endpoint.url.port);
    }
    const send =
      endpoint.kind === 'https' && this.options.tunnel === undefined ? https.request : http.request;
    return { fullPath, requestOptions, send };
  }

  /**
   * Sends one request to `path` (starting with `/fleet/v1/`) with an optional JSON body. Resolves
   * with any status; rejects with `API_UNREACHABLE` when fleetd cannot be reached in time.
   */
  request(method: string, path: string, body?: unknown): Promise<RawResponse> {
    const { endpoint, timeoutMs } = this.options;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(payload);
    }
    const { fullPath, requestOptions, send } = this.prepare(method, path, headers);
    this.options.debug?.(`HTTP ${method} ${endpoint.display.replace(/\/+$/, '')}${fullPath}`);

    return new Promise<RawResponse>((resolve, reject) => {
      let settled = false;
      const fail = (why: string, cause?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(
          new FleetError(
            'API_UNREACHABLE',
            `cannot reach fleetd at ${endpoint.display} (${why}); is fleetd running?`,
            { retryable: true, cause },
          ),
        );
      };
      const req = send(requestOptions, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => {
          fail(describeError(err), err);
        });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
      });
      const timer = setTimeout(() => {
        const seconds = timeoutMs / 1000;
        fail(`${method} ${fullPath} timed out after ${seconds}s, see --request-timeout`);
        req.destroy();
      }, timeoutMs);
      req.on('error', (err) => {
        fail(describeError(err), err);
      });
      req.end(payload);
    });
  }

  /**
   * A GET whose 200 answer streams: resolves with the status once the answer is complete; a 200
   * body goes to `onData` as it arrives (no deadline once it started; it may follow a journal),
   * any other status's body is returned. Rejects with `API_UNREACHABLE` as `request` does, and
   * when the connection breaks mid-way.
   */
  stream(path: string, onData: (text: string) => void): Promise<RawResponse> {
    const { endpoint, timeoutMs } = this.options;
    const headers: http.OutgoingHttpHeaders = { accept: 'application/x-ndjson, application/json' };
    const { fullPath, requestOptions, send } = this.prepare('GET', path, headers);
    this.options.debug?.(`HTTP GET ${endpoint.display.replace(/\/+$/, '')}${fullPath} (streamed)`);
    return new Promise<RawResponse>((resolve, reject) => {
      let settled = false;
      const fail = (why: string, cause?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(
          new FleetError(
            'API_UNREACHABLE',
            `cannot reach fleetd at ${endpoint.display} (${why}); is fleetd running?`,
            {
              retryable: true,
              cause,
            },
          ),
        );
      };
      const req = send(requestOptions, (res) => {
        clearTimeout(timer);
        const ok = res.statusCode === 200;
        const decoder = new TextDecoder();
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          if (ok) onData(decoder.decode(c, { stream: true }));
          else chunks.push(c);
        });
        res.on('error', (err) => {
          fail(describeError(err), err);
        });
        res.on('aborted', () => {
          fail('the connection broke while the answer streamed');
        });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          if (ok) onData(decoder.decode());
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
      });
      const timer = setTimeout(() => {
        fail(`GET ${fullPath} timed out after ${timeoutMs / 1000}s, see --request-timeout`);
        req.destroy();
      }, timeoutMs);
      req.on('error', (err) => {
        fail(describeError(err), err);
      });
      req.end();
    });
  }

  /** Closes pooled connections (and the tunnel processes behind them). Idempotent. */
  close(): void {
    this.agent.destroy();
  }
}

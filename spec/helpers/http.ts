/**
 * A small HTTP client for API tests: one request over a unix socket, plain TCP or TLS, with the raw
 * status, headers and body, so tests can pin bytes, not just parsed values.
 */
import * as http from 'node:http';
import * as https from 'node:https';

/** Where the API under test listens. */
export type HttpTarget =
  | { readonly kind: 'unix'; readonly socketPath: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | {
      readonly kind: 'tls';
      readonly host: string;
      readonly port: number;
      readonly ca: string;
      /** The client certificate and key; omit both to connect without one. */
      readonly cert?: string;
      readonly key?: string;
    };

/** One request. A header given as an array is sent once per value. */
export interface HttpRequestOptions {
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  readonly body?: string | Buffer;
  /** Send the body in small chunks with `Transfer-Encoding: chunked`, without a Content-Length. */
  readonly chunked?: boolean;
  /** Reuse connections through this agent (keep-alive tests); default: a fresh connection. */
  readonly agent?: http.Agent;
  /** Give up after this long. Default 10 s. */
  readonly timeoutMs?: number;
}

/** What came back. */
export interface HttpReply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  /** The body parsed as JSON; throws when it is not JSON. */
  json(): unknown;
}

/** A request function bound to one target. */
export type HttpClient = (method: string, path: string, options?: HttpRequestOptions) => Promise<HttpReply>;

/** Sends one request to `target` and reads the whole reply. */
export function httpRequest(
  target: HttpTarget,
  method: string,
  path: string,
  options: HttpRequestOptions = {},
): Promise<HttpReply> {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(options.headers ?? {})) headers[k] = typeof v === 'string' ? v : [...v];
  if (options.body !== undefined && options.chunked !== true && headers['Content-Length'] === undefined) {
    headers['Content-Length'] = String(Buffer.byteLength(options.body));
  }
  const base: http.RequestOptions = {
    method,
    path,
    headers,
    agent: options.agent ?? false,
    timeout: options.timeoutMs ?? 10_000,
  };
  return new Promise((resolve, reject) => {
    const onResponse = (res: http.IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          json: () => JSON.parse(body) as unknown,
        });
      });
    };
    let req: http.ClientRequest;
    switch (target.kind) {
      case 'unix':
        req = http.request({ ...base, socketPath: target.socketPath }, onResponse);
        break;
      case 'tcp':
        req = http.request({ ...base, host: target.host, port: target.port }, onResponse);
        break;
      case 'tls':
        req = https.request(
          {
            ...base,
            host: target.host,
            port: target.port,
            ca: target.ca,
            cert: target.cert,
            key: target.key,
          },
          onResponse,
        );
        break;
    }
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    if (options.chunked === true && options.body !== undefined) {
      const body = Buffer.from(options.body);
      for (let i = 0; i < body.length; i += 256) req.write(body.subarray(i, i + 256));
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

/** A client bound to `target`. */
export function httpClient(target: HttpTarget): HttpClient {
  return (method, path, options) => httpRequest(target, method, path, options);
}

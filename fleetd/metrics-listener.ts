import * as http from 'node:http';
import { FleetError, describeError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Scrape } from './metrics.js';

/**
 * The optional plain-HTTP listener for scrapers (`metrics_listen`): `GET /metrics` and nothing
 * else (404 for any other path, 405 for any other method). It reads no request body and exposes
 * no API, so it can face a monitoring network where the API socket cannot.
 */
export class MetricsListener {
  private readonly server: http.Server;
  private closing: Promise<void> | undefined;

  private constructor(server: http.Server) {
    this.server = server;
  }

  /** Listens on `host:port` (0 picks a free port); rejects with API_LISTEN_FAILED. */
  static async listen(options: {
    readonly host: string;
    readonly port: number;
    readonly scrape: () => Promise<Scrape>;
    readonly logger: Logger;
  }): Promise<{ listener: MetricsListener; port: number }> {
    const log = options.logger.child({ component: 'metrics-listener' });
    const server = http.createServer({ requireHostHeader: false }, (req, res) => {
      const path = (req.url ?? '').split('?', 1)[0];
      const reply = (status: number, body: string, headers: Record<string, string> = {}): void => {
        res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers });
        res.end(body);
      };
      if (path !== '/metrics') {
        reply(404, 'only /metrics is served here\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        reply(405, 'only GET supported against this resource\n', { Allow: 'GET, HEAD' });
        return;
      }
      options.scrape().then(
        (scrape) => {
          reply(200, scrape.body, { 'Content-Type': scrape.contentType });
        },
        (err: unknown) => {
          log.warn('metrics scrape failed', { error: describeError(err) });
          reply(500, 'metrics could not be collected\n');
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => {
        reject(
          new FleetError(
            'API_LISTEN_FAILED',
            `Cannot serve metrics on ${options.host}:${options.port}: ${describeError(err)}`,
            { cause: err },
          ),
        );
      });
      server.listen({ host: options.host, port: options.port }, resolve);
    });
    server.on('error', (err) => {
      log.error('metrics listener failed', { error: describeError(err) });
    });
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : options.port;
    log.info('metrics listening', { host: options.host, port });
    return { listener: new MetricsListener(server), port };
  }

  /** Stops listening and drops open connections. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise((resolve) => {
      this.server.close(() => {
        resolve();
      });
      this.server.closeAllConnections();
    });
    return this.closing;
  }
}

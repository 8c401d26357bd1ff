import { lookup } from 'node:dns/promises';
import * as net from 'node:net';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import { FleetError, describeError } from '../../lib/errors.js';

/**
 * The rules for serving the API on TCP. fleet's API has no authentication, and fleet warned not to
 * expose it on a network (docs/fleet-compat.md §7.3). fleet-ts enforces that: TCP needs TLS with client
 * certificates signed by the configured CA, unless plain HTTP is explicitly allowed and the
 * address is a loopback one.
 */

/** TLS material of a TCP listener: PEM text or the bytes of PEM files. */
export interface ApiTlsOptions {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** The CA that client certificates must chain to. */
  readonly ca: string | Buffer;
}

/** True for 127.0.0.0/8, ::1, and IPv4-mapped 127.0.0.0/8. */
export function isLoopbackAddress(address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  if (net.isIPv4(v4)) return v4.startsWith('127.');
  return net.isIPv6(address) && /^(0{0,4}:){7}0{0,3}1$|^::1$/i.test(address);
}

/**
 * True when `host` is a loopback address, or a name whose every address is one (`localhost`).
 * A name that does not resolve is not loopback.
 */
export async function isLoopbackHost(host: string): Promise<boolean> {
  if (net.isIP(host) !== 0) return isLoopbackAddress(host);
  try {
    const addresses = await lookup(host, { all: true });
    return addresses.length > 0 && addresses.every((a) => isLoopbackAddress(a.address));
  } catch {
    // Unresolvable: certainly not known to be loopback.
    return false;
  }
}

/**
 * Server TLS options: our certificate, and mandatory client certificates verified against `ca`
 * (`requestCert` + `rejectUnauthorized`), TLS 1.2 at least. Throws `CONFIG_INVALID` when the
 * material is missing or cannot be loaded.
 */
export function serverTlsOptions(tls: ApiTlsOptions): TlsOptions & SecureContextOptions {
  for (const field of ['cert', 'key', 'ca'] as const) {
    if (tls[field].length === 0) {
      throw new FleetError(
        'CONFIG_INVALID',
        `The API's TLS ${field} is empty; TCP listeners need cert, key and ca`,
      );
    }
  }
  return {
    cert: tls.cert,
    key: tls.key,
    ca: tls.ca,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  };
}

/** The CONFIG_INVALID for TLS material that Node cannot load. */
export function invalidTlsMaterial(err: unknown): FleetError {
  return new FleetError(
    'CONFIG_INVALID',
    `The API's TLS certificate, key or CA cannot be loaded: ${describeError(err)}`,
    {
      cause: err,
    },
  );
}

/** The CONFIG_INVALID for a TCP listener without TLS where plain HTTP is not allowed. */
export function plainHttpRefused(host: string, port: number, flagSet: boolean): FleetError {
  const why = flagSet
    ? `${host} is not a loopback address, and plain HTTP is only allowed on loopback`
    : 'plain HTTP on TCP is only allowed on a loopback address with allowPlainHttpOnLoopback';
  return new FleetError(
    'CONFIG_INVALID',
    `Refusing to serve the API on tcp ${host}:${port} without TLS: ${why}. ` +
      'Configure a certificate, key and client CA to serve it on the network.',
  );
}

/** Listens and waits for it; a failure is `API_LISTEN_FAILED` naming `what`. */
export function listen(
  server: net.Server,
  options: net.ListenOptions | { fd: number },
  what: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(
        new FleetError('API_LISTEN_FAILED', `Cannot serve the API on ${what}: ${describeError(err)}`, {
          cause: err,
        }),
      );
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(options);
  });
}

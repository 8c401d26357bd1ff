/**
 * A throwaway PKI for TLS tests, made with the `openssl` command: a CA, a server certificate for
 * 127.0.0.1 / ::1 / localhost and a client certificate signed by it, plus a client certificate
 * from an unrelated CA. EC P-256 keys, valid for a day.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { FleetError } from '../../lib/errors.js';

const run = promisify(execFile);

/** PEM texts. */
export interface TestPki {
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** A client certificate and key signed by another CA, which the server must refuse. */
  readonly strangerCert: string;
  readonly strangerKey: string;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd: dir });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOENT') {
      throw new FleetError(
        'HARNESS_MISSING_BINARY',
        'The TLS tests need the openssl command (apt-get install openssl)',
      );
    }
    throw new FleetError('HARNESS_COMMAND_FAILED', `openssl ${args.join(' ')} failed`, { cause: err });
  }
}

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(dir, [
    'req',
    '-x509',
    ...KEY,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-subj',
    `/CN=${name}`,
    '-days',
    '1',
  ]);
}

async function makeLeaf(
  dir: string,
  ca: string,
  name: string,
  serial: string,
  extensions: string,
): Promise<void> {
  await writeFile(path.join(dir, `${name}.ext`), extensions);
  await openssl(dir, [
    'req',
    ...KEY,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${name}`,
  ]);
  await openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-set_serial',
    serial,
    '-days',
    '1',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.crt`,
  ]);
}

/** Creates the PKI's files in `dir` (which must exist) and returns their contents. */
export async function createTestPki(dir: string): Promise<TestPki> {
  await makeCa(dir, 'ca');
  await makeCa(dir, 'other-ca');
  await makeLeaf(
    dir,
    'ca',
    'server',
    '01',
    'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  await makeLeaf(dir, 'ca', 'client', '02', 'extendedKeyUsage=clientAuth\n');
  await makeLeaf(dir, 'other-ca', 'stranger', '03', 'extendedKeyUsage=clientAuth\n');
  const read = (file: string): Promise<string> => readFile(path.join(dir, file), 'utf8');
  return {
    caCert: await read('ca.crt'),
    serverCert: await read('server.crt'),
    serverKey: await read('server.key'),
    clientCert: await read('client.crt'),
    clientKey: await read('client.key'),
    strangerCert: await read('stranger.crt'),
    strangerKey: await read('stranger.key'),
  };
}

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { expect } from 'chai';
import { describe, it, before, after } from 'mocha';

import {
  defaultRouteInterface,
  pickPublicIp,
  readMachineId,
  type InterfaceTable,
} from '../../agent/machine-identity.js';
import { isFleetError } from '../../lib/errors.js';

const addr = (address: string, internal = false) => ({
  address,
  netmask: '255.255.255.0',
  family: 'IPv4' as const,
  mac: '00:00:00:00:00:00',
  internal,
  cidr: `${address}/24`,
});

describe('agent/machine-identity', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleet-identity-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads and trims the machine ID', async () => {
    const path = join(dir, 'machine-id');
    await writeFile(path, '2c6d7ba3d1f44d49a19a2b1f1b3e8a51\n');
    expect(await readMachineId(path)).to.equal('2c6d7ba3d1f44d49a19a2b1f1b3e8a51');
  });

  it('fails clearly when the machine ID file is missing', async () => {
    const err: unknown = await readMachineId(join(dir, 'absent')).catch((e: unknown) => e);
    expect(isFleetError(err, 'CONFIG_INVALID')).to.equal(true);
    expect((err as Error).message).to.match(/unable to determine the local machine ID/);
  });

  it('fails clearly when the machine ID file holds something else', async () => {
    const path = join(dir, 'bad-id');
    await writeFile(path, 'not-an-id\n');
    expect(isFleetError(await readMachineId(path).catch((e: unknown) => e), 'CONFIG_INVALID')).to.equal(true);
  });

  it('finds the default route interface in /proc/net/route', () => {
    const table = [
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask',
      'eth1\t00FA0A0A\t00000000\t0001\t0\t0\t0\t00FFFFFF',
      'eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000',
    ].join('\n');
    expect(defaultRouteInterface(table)).to.equal('eth0');
    expect(defaultRouteInterface(table.split('\n').slice(0, 2).join('\n'))).to.equal(undefined);
  });

  it('picks the IPv4 address of the default route interface', () => {
    const interfaces: InterfaceTable = {
      lo: [addr('127.0.0.1', true)],
      eth0: [addr('192.0.2.7')],
      eth1: [addr('10.0.0.3')],
    };
    expect(pickPublicIp(interfaces, 'eth1')).to.equal('10.0.0.3');
  });

  it('falls back to the first non-internal IPv4 address without a default route', () => {
    const interfaces: InterfaceTable = {
      lo: [addr('127.0.0.1', true)],
      eth0: [addr('169.254.1.1'), addr('10.250.0.11')],
    };
    expect(pickPublicIp(interfaces, undefined)).to.equal('10.250.0.11');
  });

  it('answers undefined when there is no usable address', () => {
    expect(pickPublicIp({ lo: [addr('127.0.0.1', true)] }, undefined)).to.equal(undefined);
  });
});

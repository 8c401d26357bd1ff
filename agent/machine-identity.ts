import { readFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';

import { FleetError } from '../lib/errors.js';

/** systemd's machine ID: 32 lowercase hex characters (machine-id(5)). */
const MACHINE_ID = /^[0-9a-f]{32}$/;

/**
 * Reads this machine's ID from `/etc/machine-id` (trimmed), as fleet did. Fails with a clear
 * error when the file is missing or does not hold a machine ID.
 */
export async function readMachineId(path = '/etc/machine-id'): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new FleetError('CONFIG_INVALID', `unable to determine the local machine ID: cannot read ${path}`, {
      cause: err,
    });
  }
  const id = text.trim();
  if (!MACHINE_ID.test(id)) {
    throw new FleetError(
      'CONFIG_INVALID',
      `unable to determine the local machine ID: ${path} does not hold 32 hex characters`,
    );
  }
  return id;
}

/** The interface that holds the IPv4 default route, from /proc/net/route, or undefined. */
export function defaultRouteInterface(procNetRoute: string): string | undefined {
  for (const line of procNetRoute.split('\n').slice(1)) {
    const [iface, destination, , flags] = line.trim().split(/\s+/);
    // Destination 00000000 with the RTF_UP flag (0x1) set is the default route.
    if (
      iface !== undefined &&
      destination === '00000000' &&
      flags !== undefined &&
      (parseInt(flags, 16) & 1) === 1
    ) {
      return iface;
    }
  }
  return undefined;
}

export type InterfaceTable = ReturnType<typeof networkInterfaces>;

/**
 * The machine's public IP when none is configured (fleet: the first global-unicast IPv4 address
 * of the interface holding the default route). Without a default route (an isolated network,
 * like the test lab's bridge) it takes the first non-internal IPv4 address of any interface, by
 * interface name. Undefined when there is none.
 */
export function pickPublicIp(
  interfaces: InterfaceTable,
  routeInterface: string | undefined,
): string | undefined {
  const ipv4 = (name: string): string | undefined =>
    interfaces[name]?.find((a) => a.family === 'IPv4' && !a.internal && !a.address.startsWith('169.254.'))
      ?.address;
  if (routeInterface !== undefined) {
    const onRoute = ipv4(routeInterface);
    if (onRoute !== undefined) return onRoute;
  }
  for (const name of Object.keys(interfaces).sort()) {
    const address = ipv4(name);
    if (address !== undefined) return address;
  }
  return undefined;
}

/** Detects the public IP of this machine (see `pickPublicIp`). */
export async function detectPublicIp(): Promise<string | undefined> {
  const routes = await readFile('/proc/net/route', 'utf8').catch(() => '');
  return pickPublicIp(networkInterfaces(), defaultRouteInterface(routes));
}

/** The kernel's boot ID: tells a restarted fleetd from a second machine with the same ID. */
export async function readBootId(path = '/proc/sys/kernel/random/boot_id'): Promise<string> {
  return (await readFile(path, 'utf8').catch(() => '')).trim();
}

import { readdirSync } from 'node:fs';

import { FleetError } from '../../lib/errors.js';
import type { LabNaming } from './lab-naming.js';
import { runChecked, runCommand } from './run-command.js';

/**
 * The lab's network, all inside this host (docs/lab.md): a bridge holding the host address .1 of a
 * 10.250.X.0/24 subnet, one network namespace per machine, and a veth pair per machine with the
 * host end in the bridge and the other end in the namespace as `eth0`. No default route and no
 * forwarding, so machines reach the bridge and each other and nothing else.
 */

/** One link as `ip -j link show` reports it. */
export interface LinkInfo {
  readonly name: string;
  readonly alias: string | undefined;
  readonly up: boolean;
}

/** Creates the lab's bridge with `hostIp`/24 and brings it up. */
export async function createBridge(naming: LabNaming, hostIp: string): Promise<void> {
  await ip('link', 'add', naming.bridge, 'type', 'bridge');
  await ip('link', 'set', naming.bridge, 'alias', naming.linkAlias);
  await ip('addr', 'add', `${hostIp}/24`, 'dev', naming.bridge);
  await ip('link', 'set', naming.bridge, 'up');
}

/** Creates machine `index`'s namespace and veth pair; `eth0` inside gets `machineIp`/24. */
export async function createMachineNetwork(
  naming: LabNaming,
  index: number,
  machineIp: string,
): Promise<void> {
  const netns = naming.netnsName(naming.machineName(index));
  const hostVeth = naming.hostVeth(index);
  await ip('netns', 'add', netns);
  await ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns);
  await ip('link', 'set', hostVeth, 'alias', naming.linkAlias);
  await ip('link', 'set', hostVeth, 'master', naming.bridge);
  await ip('link', 'set', hostVeth, 'up');
  await ip('-n', netns, 'link', 'set', 'lo', 'up');
  await ip('-n', netns, 'addr', 'add', `${machineIp}/24`, 'dev', 'eth0');
  await ip('-n', netns, 'link', 'set', 'eth0', 'up');
}

/** Sets a host link up or down: a machine's cable plugged in or pulled. */
export async function setLinkUp(name: string, up: boolean): Promise<void> {
  await ip('link', 'set', name, up ? 'up' : 'down');
}

/** Every link on the host. */
export async function listLinks(): Promise<LinkInfo[]> {
  const out = await runChecked(['ip', '-j', 'link', 'show']);
  const links = JSON.parse(out) as { ifname: string; ifalias?: string; flags?: string[] }[];
  return links.map((link) => ({
    name: link.ifname,
    alias: link.ifalias,
    up: link.flags?.includes('UP') ?? false,
  }));
}

/** Names of the network namespaces `ip netns` manages. */
export function listNetns(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Deletes a link if it exists (deleting one end of a veth pair deletes both). */
export async function deleteLink(name: string): Promise<void> {
  const result = await runCommand(['ip', 'link', 'delete', name]);
  if (result.code !== 0 && !/Cannot find device|does not exist/.test(result.stderr)) {
    throw new FleetError('HARNESS_COMMAND_FAILED', `ip link delete ${name}: ${result.stderr.trim()}`);
  }
}

/** Deletes a network namespace if it exists. */
export async function deleteNetns(name: string): Promise<void> {
  if (!listNetns().includes(name)) return;
  await ip('netns', 'delete', name);
}

/**
 * The third octet of a free 10.250.X.0/24: `preferred` unless an interface already has an address
 * there, else the next free one. Throws HARNESS_START_FAILED when all 254 are taken.
 */
export async function chooseSubnetIndex(preferred: number): Promise<number> {
  const out = await runChecked(['ip', '-j', '-4', 'addr', 'show']);
  const interfaces = JSON.parse(out) as { addr_info?: { local?: string }[] }[];
  const taken = new Set<number>();
  for (const iface of interfaces) {
    for (const addr of iface.addr_info ?? []) {
      const match = /^10\.250\.([0-9]+)\./.exec(addr.local ?? '');
      if (match?.[1] !== undefined) taken.add(Number(match[1]));
    }
  }
  for (let step = 0; step < 254; step++) {
    const index = ((preferred - 1 + step) % 254) + 1;
    if (!taken.has(index)) return index;
  }
  throw new FleetError('HARNESS_START_FAILED', 'No free 10.250.X.0/24 subnet is left for another lab');
}

async function ip(...args: string[]): Promise<void> {
  await runChecked(['ip', ...args]);
}

import { createHash } from 'node:crypto';

import { FleetError } from '../../lib/errors.js';

/**
 * Every name a lab uses on the host, derived from the lab's name alone, so that a later process
 * (the CLI, or a start after a crash) finds exactly this lab's resources and never another's.
 *
 * Linux interface names are at most 15 characters, so links are named from a short hash of the
 * lab name: bridge `flb<hash>`, host side of machine i's veth `flv<hash>m<i>`. Machines are
 * `<lab>-m<i>`, their network namespaces `fleet-lab-<lab>-m<i>`, their cgroups
 * `lab/<lab>/<machine>` in the `name=systemd` and unified hierarchies.
 */
export interface LabNaming {
  readonly lab: string;
  readonly hash: string;
  readonly bridge: string;
  /** Machine i, counted from 1. */
  machineName(index: number): string;
  netnsName(machine: string): string;
  hostVeth(index: number): string;
  /** True for this lab's machine names only (`<lab>-m<digits>`). */
  isMachineName(name: string): boolean;
  isNetnsName(name: string): boolean;
  /** True for this lab's bridge and host veths. */
  isLinkName(name: string): boolean;
  /** The lab's cgroup directories in each hierarchy it uses. */
  readonly cgroupRoots: readonly string[];
  /** `ip link` alias set on the lab's links, naming the lab they belong to. */
  readonly linkAlias: string;
}

/** The cgroup hierarchies the lab places nspawn in (docs/lab.md: leave the v1 controllers alone). */
export const CGROUP_HIERARCHIES: readonly string[] = ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified'];

/** Lab names: short, lower-case, usable in hostnames and file names. */
const LAB_NAME = /^[a-z][a-z0-9-]{0,30}$/;

/** Throws HARNESS_START_FAILED unless `name` is a usable lab name. */
export function validateLabName(name: string): void {
  if (!LAB_NAME.test(name) || name.endsWith('-')) {
    throw new FleetError(
      'HARNESS_START_FAILED',
      `Lab name "${name}" is not usable: use 1-31 characters a-z, 0-9 and "-", starting with a letter`,
    );
  }
}

/** The names of lab `lab`; see {@link LabNaming}. */
export function labNaming(lab: string): LabNaming {
  validateLabName(lab);
  const hash = createHash('sha256').update(lab).digest('hex').slice(0, 6);
  const machinePattern = new RegExp(`^${lab}-m[0-9]+$`);
  const linkPattern = new RegExp(`^(flb${hash}|flv${hash}m[0-9]+)$`);
  return {
    lab,
    hash,
    bridge: `flb${hash}`,
    machineName: (index) => `${lab}-m${index}`,
    netnsName: (machine) => `fleet-lab-${machine}`,
    hostVeth: (index) => `flv${hash}m${index}`,
    isMachineName: (name) => machinePattern.test(name),
    isNetnsName: (name) =>
      name.startsWith('fleet-lab-') && machinePattern.test(name.slice('fleet-lab-'.length)),
    isLinkName: (name) => linkPattern.test(name),
    cgroupRoots: CGROUP_HIERARCHIES.map((hierarchy) => `${hierarchy}/lab/${lab}`),
    linkAlias: `fleet-ts-lab ${lab}`,
  };
}

/** The lab's default third octet in 10.250.X.0/24, from its name; 1..254. */
export function defaultSubnetIndex(lab: string): number {
  const digest = createHash('sha256').update(`subnet:${lab}`).digest();
  return ((digest[0] ?? 0) % 254) + 1;
}

/** Addresses of subnet 10.250.`index`.0/24: the host's bridge is .1, machine i is .(10 + i). */
export function subnetAddresses(index: number): { readonly hostIp: string; machineIp(i: number): string } {
  return { hostIp: `10.250.${index}.1`, machineIp: (i) => `10.250.${index}.${10 + i}` };
}

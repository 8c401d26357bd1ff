import { basename } from 'node:path';

/** Which program a name under which the binary runs selects; undefined for none. */
export function programFor(argv0: string): 'fleetd' | 'fleetctl' | undefined {
  const name = basename(argv0);
  if (name === 'fleetd' || name.startsWith('fleetd-') || name.startsWith('fleetd.')) return 'fleetd';
  if (name === 'fleetctl' || name.startsWith('fleetctl-') || name.startsWith('fleetctl.')) return 'fleetctl';
  return undefined;
}

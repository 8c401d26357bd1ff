import type { ApiMachine, FleetClient } from './client.js';

/**
 * How fleetctl names machines (fleet's `machineIDLegend` and `machineFullLegend`): the first 8
 * characters of the ID and `...`, or the full ID with `--full`, followed by `/<IP>` when the
 * machine is known and has one.
 */

/** fleet's `ShortID`: the first 8 characters, or the whole ID when it is not longer. */
export function shortMachineId(id: string): string {
  return id.length <= 8 ? id : id.slice(0, 8);
}

/** `m1234567...`, or the full ID with `full`. */
export function machineIdLegend(id: string, full: boolean): string {
  return full ? id : `${shortMachineId(id)}...`;
}

/** `m1234567.../10.0.0.1`: the ID legend plus the IP when the machine is known and has one. */
export function machineFullLegend(id: string, machine: ApiMachine | undefined, full: boolean): string {
  const legend = machineIdLegend(id, full);
  const ip = machine?.primaryIP;
  return ip === undefined || ip === '' ? legend : `${legend}/${ip}`;
}

/**
 * Machines by ID for one run. fleet filled its cache once, racing its own goroutines, so a
 * `Unit X launched` line sometimes lacked its machine; this one re-reads the list whenever it is
 * asked about an ID it has not seen.
 */
export class MachineDirectory {
  private byId: Map<string, ApiMachine> | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(private readonly client: FleetClient) {}

  /** The machine, or undefined when fleetd does not list it (it died, say). */
  async get(id: string): Promise<ApiMachine | undefined> {
    if (this.byId?.has(id) !== true) await this.refresh();
    return this.byId?.get(id);
  }

  /** Every live machine, sorted by ID, as last read. */
  async all(): Promise<ApiMachine[]> {
    if (this.byId === undefined) await this.refresh();
    return [...(this.byId?.values() ?? [])];
  }

  /**
   * Re-reads the machine list. Callers that ask while a read is in flight share it: the waits of
   * a `start` of 100 units all name their machines at about the same moment.
   */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const list = await this.client.listMachines();
        this.byId = new Map(list.map((m) => [m.id, m]));
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  /** `m1234567.../10.0.0.1` for a machine ID (see `machineFullLegend`). */
  async legend(id: string, full = false): Promise<string> {
    return machineFullLegend(id, await this.get(id), full);
  }
}

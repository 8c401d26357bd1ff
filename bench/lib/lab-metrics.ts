/**
 * Measuring fleetd and etcd from the host: fleetd's CPU time and RSS inside a lab machine (from
 * /proc), and the request counters etcd exports on /metrics.
 */
import type { FleetCluster, MachineRef } from '../../systemd-fixtures/cluster/fleet-cluster.js';

/** fleetd's MainPID in a machine, its CPU ticks (utime + stime) and RSS in kB. */
export interface FleetdSample {
  readonly pid: number;
  readonly ticks: number;
  readonly rssKb: number;
}

export async function fleetdSample(cluster: FleetCluster, machine: MachineRef): Promise<FleetdSample> {
  const r = await cluster.exec(machine, [
    'sh',
    '-c',
    'p=$(systemctl show -p MainPID --value fleetd.service); echo "$p"; cat /proc/$p/stat; grep VmRSS /proc/$p/status',
  ]);
  const [pidLine = '', stat = '', rss = ''] = r.stdout.split('\n');
  // Fields after the parenthesised comm start at field 3; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(rss)?.[1]);
  if (!Number.isFinite(ticks) || !Number.isFinite(rssKb)) throw new Error(`cannot read fleetd: ${r.stdout}`);
  return { pid: Number(pidLine), ticks, rssKb };
}

/** The machine's clock ticks per second (for `FleetdSample.ticks`). */
export async function clockTicks(cluster: FleetCluster, machine: MachineRef): Promise<number> {
  return Number((await cluster.exec(machine, ['getconf', 'CLK_TCK'])).stdout.trim());
}

/**
 * etcd's Prometheus counters that count requests, by a readable key: `unary <Method>` (completed
 * unary calls), `stream msg <Method>` (messages received on streams: one per keepalive, per watch
 * create/cancel), `stream start <Method>` (streams opened), `mvcc <op>` (storage operations).
 */
export async function etcdCounters(clientUrl: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${clientUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const counters = new Map<string, number>();
  const add = (key: string, value: number): void => {
    counters.set(key, (counters.get(key) ?? 0) + value);
  };
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{([^}]*)\})? ([0-9.e+-]+)$/.exec(line);
    if (m === null) continue;
    const [, metric = '', labelText = '', raw = ''] = m;
    const labels = Object.fromEntries(
      [...labelText.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1] ?? '', l[2] ?? '']),
    );
    const value = Number(raw);
    if (metric === 'grpc_server_handled_total' && labels.grpc_type === 'unary') {
      add(`unary ${labels.grpc_method ?? '?'}`, value);
    } else if (metric === 'grpc_server_msg_received_total' && labels.grpc_type !== 'unary') {
      add(`stream msg ${labels.grpc_method ?? '?'}`, value);
    } else if (metric === 'grpc_server_started_total' && labels.grpc_type !== 'unary') {
      add(`stream start ${labels.grpc_method ?? '?'}`, value);
    } else if (metric.startsWith('etcd_debugging_mvcc_') && metric.endsWith('_total')) {
      add(`mvcc ${metric.slice('etcd_debugging_mvcc_'.length, -'_total'.length)}`, value);
    }
  }
  return counters;
}

/** The difference `after - before` of every counter that moved. */
export function counterDelta(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const delta = new Map<string, number>();
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    const d = (after.get(key) ?? 0) - (before.get(key) ?? 0);
    if (d !== 0) delta.set(key, d);
  }
  return delta;
}

/**
 * Requests in a counter delta: unary calls plus messages received on streams (each keepalive, each
 * watch create). Stream opens and MVCC operations are not requests of their own.
 */
export function requestCount(delta: Map<string, number>): number {
  let n = 0;
  for (const [key, value] of delta) if (key.startsWith('unary ') || key.startsWith('stream msg ')) n += value;
  return n;
}

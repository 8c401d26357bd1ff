/**
 * Measuring fleetd and etcd from the host: fleetd's CPU time and RSS inside a lab machine (from
 * /proc), and the request counters etcd exports on /metrics.
 */
import { Etcd3 } from 'etcd3';

import type { FleetCluster, MachineRef } from '../../systemd-fixtures/cluster/fleet-cluster.js';

/**
 * fleetd's MainPID in a machine, its CPU ticks (utime + stime) and its resident memory split as
 * /proc/<pid>/status does, in kB: one exec into the machine per sample.
 */
export interface FleetdSample {
  readonly pid: number;
  readonly ticks: number;
  readonly rssKb: number;
  /** Private anonymous memory: the JavaScript heap, native allocations. */
  readonly anonKb: number;
  /** File-backed pages: the node binary and shared libraries mapped. */
  readonly fileKb: number;
  readonly shmemKb: number;
}

export async function fleetdSample(cluster: FleetCluster, machine: MachineRef): Promise<FleetdSample> {
  const r = await cluster.exec(machine, [
    'sh',
    '-c',
    'p=$(systemctl show -p MainPID --value fleetd.service); echo "Pid: $p"; cat /proc/$p/stat; ' +
      'grep -E "^(VmRSS|RssAnon|RssFile|RssShmem):" /proc/$p/status',
  ]);
  const stat = r.stdout.split('\n')[1] ?? '';
  // Fields after the parenthesised comm start at field 3; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(r.stdout)?.[1]);
  const sample = {
    pid: field('Pid'),
    ticks: Number(fields[11]) + Number(fields[12]),
    rssKb: field('VmRSS'),
    anonKb: field('RssAnon'),
    fileKb: field('RssFile'),
    shmemKb: field('RssShmem'),
  };
  if (Object.values(sample).some((v) => !Number.isFinite(v)))
    throw new Error(`cannot read fleetd: ${r.stdout}`);
  return sample;
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

/** One live etcd lease: its granted TTL and the keys attached to it (relative to no prefix). */
export interface EtcdLeaseInfo {
  readonly id: string;
  readonly grantedTtlS: number;
  readonly keys: readonly string[];
}

/**
 * Every live lease in etcd with its keys (LeaseLeases, then LeaseTimeToLive per lease). These are
 * requests of their own: take them outside a measured window.
 */
export async function etcdLeases(clientUrl: string): Promise<EtcdLeaseInfo[]> {
  const client = new Etcd3({ hosts: clientUrl, dialTimeout: 5_000 });
  try {
    const { leases } = await client.leaseClient.leaseLeases({ deadline: Date.now() + 10_000 });
    const infos = await Promise.all(
      leases.map(async ({ ID }) => {
        const r = await client.leaseClient.leaseTimeToLive(
          { ID, keys: true },
          { deadline: Date.now() + 10_000 },
        );
        return {
          id: ID,
          grantedTtlS: Number(r.grantedTTL),
          keys: r.keys.map((k) => k.toString()),
        };
      }),
    );
    // A lease that expired between the list and its lookup answers TTL -1 and no grant.
    return infos.filter((l) => l.grantedTtlS > 0);
  } finally {
    client.close();
  }
}

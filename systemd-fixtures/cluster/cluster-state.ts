import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { FleetError } from '../../lib/errors.js';

/**
 * A fleet cluster's state file (`cluster.json` in its state dir). The etcd members outlive the
 * process that started them (the quick start's `up` returns while the cluster keeps running), so
 * their pids, ports and data dirs are recorded here for `down`, `status` and a later start that
 * cleans up after a crash. The machines themselves are recorded by the lab (lab-state.ts).
 */

/** Where clusters keep their state unless told otherwise: `/var/lib/fleet-ts-cluster/<name>`. */
export const CLUSTER_STATE_ROOT = '/var/lib/fleet-ts-cluster';

/** One etcd member as recorded. */
export interface EtcdMemberState {
  /** `--name`: `etcd`, or `etcd-0` ... `etcd-2` in a three-member cluster. */
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  /** etcd's stdout and stderr, appended across restarts. */
  readonly logFile: string;
  /** Set while the member runs (as far as this file knows). */
  pid: number | undefined;
  /** Field 22 of /proc/PID/stat when it was started, so a reused pid is never signalled. */
  startTime: string | undefined;
}

/** Everything about a cluster that is not the lab's. */
export interface ClusterState {
  readonly version: 1;
  readonly name: string;
  /** The etcd key prefix of fleet-ts in this cluster. */
  readonly prefix: string;
  /** The host's address on the lab bridge, where etcd also listens for the machines. */
  readonly hostIp: string;
  /** The lab's state dir (machines, roots, journals). */
  readonly labStateDir: string;
  /** Host directory of the per-machine API socket links (`m1.sock` ...). */
  readonly apiDir: string;
  readonly etcd: {
    readonly token: string;
    readonly initialCluster: string;
    readonly members: EtcdMemberState[];
  };
}

/** The state dir of cluster `name` under the default root. */
export function defaultClusterStateDir(name: string): string {
  return join(CLUSTER_STATE_ROOT, name);
}

/** The state file inside a cluster's state dir. */
export function clusterStateFile(stateDir: string): string {
  return join(stateDir, 'cluster.json');
}

/** Reads a cluster's state; `undefined` when there is no state file (never started, or gone). */
export function readClusterState(stateDir: string): ClusterState | undefined {
  let text: string;
  try {
    text = readFileSync(clusterStateFile(stateDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let state: unknown;
  try {
    state = JSON.parse(text);
  } catch (err) {
    throw new FleetError('HARNESS_COMMAND_FAILED', `Cannot read ${clusterStateFile(stateDir)}`, {
      cause: err,
    });
  }
  const version = (state as { version?: unknown } | null)?.version;
  if (version !== 1) {
    throw new FleetError(
      'HARNESS_COMMAND_FAILED',
      `${clusterStateFile(stateDir)} has version ${String(version)}, this build reads version 1`,
    );
  }
  return state as ClusterState;
}

/** Writes the state file atomically (write to a temporary file, then rename). */
export function writeClusterState(stateDir: string, state: ClusterState): void {
  mkdirSync(stateDir, { recursive: true });
  const file = clusterStateFile(stateDir);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(temporary, file);
}

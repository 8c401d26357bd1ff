import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { FleetError, describeError } from '../../lib/errors.js';
import { readProcess } from '../lab/lab-processes.js';
import { pollUntil } from '../lab/poll.js';
import { STANDARD_PATH } from '../lab/run-command.js';
import type { ClusterState, EtcdMemberState } from './cluster-state.js';

/**
 * The cluster's etcd: Debian's `etcd` (3.4) started detached (its own session, output to a log
 * file), so it keeps serving the machines after the process that started it has exited, as the
 * quick start needs. Clients are served on loopback (for the host: tests, benchmarks, fleetctl's
 * registry checks) and on the lab bridge address (for fleetd in the machines), on the same port;
 * peers talk on loopback. Every pid is recorded with its start time and signalled only while
 * /proc still shows that very etcd process.
 */

/** The `comm` of an etcd process. */
const ETCD_COMM = 'etcd';
// etcd's defaults (100 ms heartbeat, 1 s election) are for real networks; on one host a new
// leader takes over from a stopped one in about a second with these, as in the test harness.
const TUNING_FLAGS = ['--heartbeat-interval', '50', '--election-timeout', '500'];
const HEALTH_TIMEOUT_MS = 1_000;

/** The etcd part of a cluster's state, before any member ran. */
export type EtcdPlan = ClusterState['etcd'];

/**
 * Names, free ports and directories for `count` members under `stateDir/etcd/`. Ports are free
 * on loopback now; {@link ClusterEtcd.startAll} fails (and the caller retries) if one is taken
 * before etcd binds it.
 */
export async function planEtcd(count: number, stateDir: string): Promise<EtcdPlan> {
  const members: EtcdMemberState[] = [];
  for (let i = 0; i < count; i++) {
    const name = count === 1 ? 'etcd' : `etcd-${i}`;
    members.push({
      name,
      clientPort: await freePort(),
      peerPort: await freePort(),
      dataDir: join(stateDir, 'etcd', name),
      logFile: join(stateDir, 'etcd', `${name}.log`),
      pid: undefined,
      startTime: undefined,
    });
  }
  return {
    token: `fleet-ts-cluster-${randomUUID()}`,
    initialCluster: members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(','),
    members,
  };
}

/** The members of one cluster's etcd, as recorded in its state (which this object updates). */
export class ClusterEtcd {
  /**
   * `plan` is the state's etcd part: pids and start times are written into it, and `save` is
   * called after every change so the state file follows.
   */
  constructor(
    private readonly plan: EtcdPlan,
    private readonly hostIp: string,
    private readonly save: () => void,
  ) {}

  /** How many members there are. */
  get size(): number {
    return this.plan.members.length;
  }

  /** Loopback client URLs of every member: what the host connects to. */
  get endpoints(): string[] {
    return this.plan.members.map((m) => `http://127.0.0.1:${m.clientPort}`);
  }

  /** Bridge client URLs of every member: what fleetd in the machines connects to. */
  get machineEndpoints(): string[] {
    return this.plan.members.map((m) => `http://${this.hostIp}:${m.clientPort}`);
  }

  /** The member's name and URLs, and whether its process runs. */
  member(index: number): { name: string; clientUrl: string; logFile: string; running: boolean } {
    const m = this.memberState(index);
    return {
      name: m.name,
      clientUrl: `http://127.0.0.1:${m.clientPort}`,
      logFile: m.logFile,
      running: this.runningPid(m) !== undefined,
    };
  }

  /** True when the member's recorded process is still that etcd. */
  isRunning(index: number): boolean {
    return this.runningPid(this.memberState(index)) !== undefined;
  }

  /**
   * Starts every member that does not run and waits until each reports healthy (which, with
   * three members, needs a quorum: they are all started before any is waited for). Throws
   * HARNESS_START_FAILED with the log tail when one exits or stays unhealthy past `timeoutMs`.
   */
  async startAll(timeoutMs: number): Promise<void> {
    await this.start(
      this.plan.members.map((_, i) => i),
      timeoutMs,
    );
  }

  /** Starts the given members (those not running) and waits until they report healthy. */
  async start(indexes: readonly number[], timeoutMs: number): Promise<void> {
    const members = indexes.map((i) => this.memberState(i));
    for (const m of members) if (this.runningPid(m) === undefined) this.spawn(m);
    const deadline = Date.now() + timeoutMs;
    await Promise.all(members.map((m) => this.waitHealthy(m, deadline, timeoutMs)));
  }

  /**
   * Stops the given members: SIGTERM, SIGKILL after `graceMs`, and waits until they are gone.
   * Their data dirs stay, so {@link start} brings them back with their data. Idempotent.
   */
  async stop(indexes: readonly number[], graceMs = 5_000): Promise<void> {
    const members = indexes.map((i) => this.memberState(i));
    const pids = members.map((m) => this.runningPid(m)).filter((pid) => pid !== undefined);
    for (const m of members) this.signal(m, 'SIGTERM');
    if (!(await waitGone(pids, graceMs))) {
      for (const m of members) this.signal(m, 'SIGKILL');
      if (!(await waitGone(pids, 10_000))) {
        throw new FleetError('HARNESS_COMMAND_FAILED', `etcd (pids ${pids.join(', ')}) survives SIGKILL`);
      }
    }
    for (const m of members) {
      m.pid = undefined;
      m.startTime = undefined;
    }
    this.save();
  }

  /** Stops every member; the whole cluster's data is about to go, so no grace is needed. */
  async stopAll(): Promise<void> {
    await this.stop(
      this.plan.members.map((_, i) => i),
      0,
    );
  }

  /** SIGKILLs every running member without waiting: the last resort when this process exits. */
  killAllSync(): void {
    for (const m of this.plan.members) this.signal(m, 'SIGKILL');
  }

  /** The last `lines` lines of a member's log. */
  logTail(index: number, lines = 20): string {
    const m = this.memberState(index);
    try {
      return readFileSync(m.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch (err) {
      return `(cannot read ${m.logFile}: ${describeError(err)})`;
    }
  }

  private spawn(m: EtcdMemberState): void {
    mkdirSync(m.dataDir, { recursive: true, mode: 0o700 });
    const urls = [`http://127.0.0.1:${m.clientPort}`, `http://${this.hostIp}:${m.clientPort}`].join(',');
    const peerUrl = `http://127.0.0.1:${m.peerPort}`;
    const args = [
      '--name',
      m.name,
      '--data-dir',
      m.dataDir,
      '--listen-client-urls',
      urls,
      '--advertise-client-urls',
      urls,
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      '--initial-cluster',
      this.plan.initialCluster,
      '--initial-cluster-token',
      this.plan.token,
      // Ignored by etcd once the data dir holds a member, so a restart rejoins with its data.
      '--initial-cluster-state',
      'new',
      ...TUNING_FLAGS,
      '--logger',
      'zap',
      '--log-outputs',
      'stderr',
    ];
    const log = openSync(m.logFile, 'a');
    try {
      // Its own session and no pipes to us: it keeps running when this process exits.
      const child = spawn('etcd', args, {
        detached: true,
        stdio: ['ignore', log, log],
        env: { PATH: STANDARD_PATH },
      });
      child.on('error', () => undefined);
      child.unref();
      if (child.pid === undefined) {
        throw new FleetError(
          'HARNESS_MISSING_BINARY',
          'Cannot start etcd: is the Debian package etcd-server installed?',
        );
      }
      m.pid = child.pid;
      m.startTime = processStartTime(child.pid);
    } finally {
      closeSync(log);
    }
    this.save();
  }

  private async waitHealthy(m: EtcdMemberState, deadline: number, timeoutMs: number): Promise<void> {
    for (;;) {
      if (await healthy(m.clientPort)) return;
      if (this.runningPid(m) === undefined) {
        throw new FleetError(
          'HARNESS_START_FAILED',
          `etcd ${m.name} (client port ${m.clientPort}) exited while starting; last lines of ${m.logFile}:\n` +
            this.logTail(this.plan.members.indexOf(m)),
          // A port taken since planEtcd: new ports help.
          { retryable: /address already in use/.test(this.logTail(this.plan.members.indexOf(m))) },
        );
      }
      if (Date.now() >= deadline) {
        throw new FleetError(
          'HARNESS_START_FAILED',
          `etcd ${m.name} is not healthy after ${timeoutMs} ms; last lines of ${m.logFile}:\n` +
            this.logTail(this.plan.members.indexOf(m)),
        );
      }
      await delay(50);
    }
  }

  private runningPid(m: EtcdMemberState): number | undefined {
    if (m.pid === undefined) return undefined;
    const info = readProcess(m.pid);
    if (info === undefined || info.comm !== ETCD_COMM || info.state === 'Z') return undefined;
    return processStartTime(m.pid) === m.startTime ? m.pid : undefined;
  }

  private signal(m: EtcdMemberState, signal: NodeJS.Signals): void {
    const pid = this.runningPid(m);
    if (pid === undefined) return;
    try {
      process.kill(pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }

  private memberState(index: number): EtcdMemberState {
    const m = this.plan.members[index];
    if (m === undefined) {
      throw new FleetError(
        'HARNESS_COMMAND_FAILED',
        `etcd has members 0-${this.plan.members.length - 1}, not ${index}`,
      );
    }
    return m;
  }
}

/** Field 22 (starttime) of /proc/PID/stat; `undefined` when the process is gone. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function waitGone(pids: readonly number[], timeoutMs: number): Promise<boolean> {
  const gone = (): boolean =>
    pids.every((pid) => {
      const info = readProcess(pid);
      return info === undefined || info.state === 'Z';
    });
  return (await pollUntil(() => (gone() ? true : undefined), { timeoutMs, intervalMs: 50 })) === true;
}

/** Does etcd on loopback `port` answer `/health` with `"health":"true"`? */
function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get(
      { host: '127.0.0.1', port, path: '/health', agent: false, timeout: HEALTH_TIMEOUT_MS },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => {
          resolve(/"health"\s*:\s*"true"/.test(body));
        });
        response.on('error', () => {
          resolve(false);
        });
      },
    );
    request.on('timeout', () => request.destroy());
    // Not listening yet, or no leader yet: both mean "not healthy yet".
    request.on('error', () => {
      resolve(false);
    });
  });
}

/** A TCP port free on loopback right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

/**
 * The real-etcd test harness: starts Debian's `etcd` (package etcd-server) on free loopback ports
 * with a fresh temporary data dir, waits until it reports healthy, and always cleans up after itself.
 *
 * - `startEtcd()` gives one member, `startEtcdCluster(n)` gives n members that form one cluster.
 * - `useEtcd()` / `useEtcdCluster(n)` do the same from a mocha suite's `before`/`after` hooks:
 *   `const etcd = useEtcd();` then `etcd.current.client()` inside the tests.
 * - Fault controls: `kill()` (SIGKILL, data kept), `restart()`, `pause()`/`resume()` (SIGSTOP/SIGCONT).
 * - A missing binary fails loudly with `HARNESS_MISSING_BINARY`; a test is never skipped.
 * - Every started member is registered; when the process exits (normally, or on SIGINT, SIGTERM,
 *   SIGHUP) the ones still around are SIGKILLed and their temp folders removed, synchronously.
 *
 * Each member owns one temp folder `<os.tmpdir()>/fleet-etcd-<name>-XXXXXX/` holding `data/` (the
 * data dir) and `etcd.log` (etcd's stdout and stderr, appended across restarts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before } from 'mocha';
import { Etcd3, type IOptions } from 'etcd3';
import { FleetError, describeError, isFleetError } from '../../lib/errors.js';
import { eventually } from '../eventually.js';

/** How to start etcd. Every field is optional. */
export interface EtcdOptions {
  /** The etcd executable: a name looked up on PATH, or a path. Default `etcd`. */
  readonly binary?: string;
  /**
   * Addresses besides 127.0.0.1 where etcd also serves clients, on the same port, for example a lab
   * bridge address `10.250.0.1` so nspawn machines can reach it. They must exist on this host.
   */
  readonly listenHosts?: readonly string[];
  /** The member name; a cluster's members are `<name>-0`, `<name>-1`, ... Default `etcd`. */
  readonly name?: string;
  /** How long a start or restart may take overall, port retries included. Default 15000 ms. */
  readonly timeoutMs?: number;
  /** How long `stop()` waits after SIGTERM before it sends SIGKILL. Default 5000 ms. */
  readonly stopTimeoutMs?: number;
  /**
   * Where free ports come from. Default `findFreePort`; a test can hand out a busy port first to
   * exercise the retry with new ports.
   */
  readonly freePort?: () => Promise<number>;
}

/** One running (or killed, or stopped) etcd member. */
export interface EtcdInstance {
  /** The member name given to etcd (`--name`). */
  readonly name: string;
  /** The loopback client URL, `http://127.0.0.1:<port>`. */
  readonly clientUrl: string;
  /** Every client URL: `clientUrl` first, then one per `listenHosts` address (same port). */
  readonly endpoints: string[];
  /** The loopback peer URL other members reach this one on. */
  readonly peerUrl: string;
  /** The data dir. Kept by `kill()` and `restart()`, removed by `stop()`. */
  readonly dataDir: string;
  /** etcd's stdout and stderr, next to the data dir. Removed by `stop()`. */
  readonly logFile: string;
  /** The pid of the most recently started etcd process (it changes on `restart()`). */
  readonly pid: number;
  /** True while the etcd process exists (paused counts as running). */
  readonly running: boolean;
  /**
   * A new etcd3 client bound to `clientUrl`; `options` may override anything, `hosts` included.
   * `stop()` closes it. Throws `INTERNAL` after `stop()`.
   */
  client(options?: Partial<IOptions>): Etcd3;
  /**
   * Closes the clients, SIGTERMs etcd (SIGKILL after `stopTimeoutMs`), waits for it to exit and
   * removes the temp folder. Idempotent; the member cannot be restarted afterwards.
   */
  stop(): Promise<void>;
  /** SIGKILLs etcd and waits for it to exit; keeps the data dir for `restart()`. No-op when not running. */
  kill(): Promise<void>;
  /** Freezes etcd with SIGSTOP: its sockets stay open but it answers nothing. No-op when not running. */
  pause(): void;
  /** Unfreezes etcd with SIGCONT. No-op unless paused. */
  resume(): void;
  /**
   * Starts etcd again on the same ports and data dir (stopping it first if it runs) and waits for
   * health. Throws `HARNESS_START_FAILED` after `stop()` or when etcd does not come back.
   */
  restart(): Promise<void>;
  /** The last `lines` lines of the log file (default 20), for failure messages. */
  logTail(lines?: number): string;
}

/** A cluster of etcd members on loopback. */
export interface EtcdCluster {
  /** The members, in the order of `--initial-cluster`. */
  readonly members: readonly EtcdInstance[];
  /** Every member's loopback client URL. */
  readonly endpoints: string[];
  /** A new etcd3 client over all members' endpoints; `stop()` closes it. */
  client(options?: Partial<IOptions>): Etcd3;
  /** The member that currently leads, or `undefined` when no running member knows a leader. */
  leader(): Promise<EtcdInstance | undefined>;
  /**
   * Closes the cluster's clients, SIGKILLs every member and removes their temp folders. Idempotent.
   * (Stopping members one by one with `EtcdInstance.stop` works too, but the last leader may then sit
   * out `stopTimeoutMs` waiting for a quorum before it is SIGKILLed.)
   */
  stop(): Promise<void>;
}

/** What `useEtcd` and `useEtcdCluster` return: `current` is valid inside the suite's tests and hooks. */
export interface EtcdHandle<T> {
  /** The running instance. Throws `INTERNAL` outside the suite's lifetime (before `before`, after `after`). */
  readonly current: T;
}

const DEFAULT_BINARY = 'etcd';
const DEFAULT_NAME = 'etcd';
const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_STOP_TIMEOUT_MS = 5_000;
const HEALTH_INTERVAL_MS = 50;
const HTTP_TIMEOUT_MS = 1_000;
const START_ATTEMPTS = 5;
const LOG_TAIL_LINES = 20;
const INSTALL_HINT = 'apt-get install etcd-server';
const TERMINATING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
// etcd's defaults (100 ms heartbeat, 1 s election timeout) are for real networks. Halved, a new
// leader takes over from a killed one in about a second, with room left for a busy test machine.
const TUNING_FLAGS: [string, string][] = [
  ['--heartbeat-interval', '50'],
  ['--election-timeout', '500'],
];

/**
 * Starts one etcd member on free loopback ports and waits until it is healthy. Retries with new ports
 * when one was taken in the meantime.
 *
 * Throws `HARNESS_MISSING_BINARY` when the binary is not installed, and `HARNESS_START_FAILED` (with
 * the last lines of etcd's log) when etcd exits or stays unhealthy past `timeoutMs`.
 */
export async function startEtcd(options: EtcdOptions = {}): Promise<EtcdInstance> {
  const [member] = await launch(1, options);
  if (member === undefined) throw new FleetError('INTERNAL', 'launching one etcd member returned none');
  return member;
}

/**
 * Starts a cluster of `size` members on loopback (`--initial-cluster` over free peer ports) and waits
 * until every member is healthy. Fails like `startEtcd`.
 */
export async function startEtcdCluster(size: number, options: EtcdOptions = {}): Promise<EtcdCluster> {
  if (!Number.isInteger(size) || size < 1) {
    throw new FleetError(
      'INTERNAL',
      `startEtcdCluster needs a positive whole number of members, got ${size}`,
    );
  }
  const members = await launch(size, options);
  return new Cluster(members);
}

/**
 * Starts etcd in the calling suite's `before` hook and stops it in its `after` hook:
 * `const etcd = useEtcd();` then `etcd.current.client()` in the tests.
 */
export function useEtcd(options: EtcdOptions = {}): EtcdHandle<EtcdInstance> {
  return useInSuite('useEtcd', options, () => startEtcd(options));
}

/** Like `useEtcd`, for a cluster of `size` members. */
export function useEtcdCluster(size: number, options: EtcdOptions = {}): EtcdHandle<EtcdCluster> {
  return useInSuite('useEtcdCluster', options, () => startEtcdCluster(size, options));
}

/**
 * SIGSTOPs a member and waits until the kernel has stopped it: `pause()` only sends the signal,
 * and on a busy machine etcd can still answer a request or two before every thread has stopped.
 */
export async function freeze(instance: EtcdInstance): Promise<void> {
  instance.pause();
  await eventually(() => {
    const stat = fs.readFileSync(`/proc/${instance.pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state !== 'T') throw new Error(`etcd ${instance.name} is not stopped yet (state ${state})`);
  });
}

const handedOutPorts = new Set<number>();

/**
 * A TCP port that is free on `host` right now: binds port 0, reads the port, closes. Never returns
 * the same port twice in one process, so parallel starts cannot pick the same one.
 */
export async function findFreePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await bindEphemeral(host);
    if (!handedOutPorts.has(port)) {
      handedOutPorts.add(port);
      return port;
    }
  }
  throw new FleetError('HARNESS_START_FAILED', `No unused free port on ${host} after 100 tries`);
}

function bindEphemeral(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

/** Starts `count` members forming one cluster; retries with new ports when etcd could not bind. */
async function launch(count: number, options: EtcdOptions): Promise<Member[]> {
  const binary = resolveBinary(options.binary ?? DEFAULT_BINARY);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    const members = await createMembers(count, binary, options);
    try {
      for (const member of members) member.spawn();
      await Promise.all(members.map((member) => member.waitHealthy(deadline, timeoutMs)));
      return members;
    } catch (error) {
      await Promise.all(members.map((member) => member.stop()));
      const portTaken = isFleetError(error, 'HARNESS_START_FAILED') && error.retryable;
      if (!portTaken || attempt >= START_ATTEMPTS || Date.now() >= deadline) throw error;
    }
  }
}

async function createMembers(count: number, binary: string, options: EtcdOptions): Promise<Member[]> {
  const freePort = options.freePort ?? (() => findFreePort());
  const baseName = options.name ?? DEFAULT_NAME;
  const specs: { name: string; clientPort: number; peerPort: number }[] = [];
  for (let i = 0; i < count; i++) {
    specs.push({
      name: count === 1 ? baseName : `${baseName}-${i}`,
      clientPort: await freePort(),
      peerPort: await freePort(),
    });
  }
  const initialCluster = specs.map((s) => `${s.name}=${hostUrl('127.0.0.1', s.peerPort)}`).join(',');
  const token = `fleet-ts-${randomUUID()}`;
  return Promise.all(
    specs.map(async (s) => {
      const baseDir = await fsp.mkdtemp(path.join(os.tmpdir(), `fleet-etcd-${safeName(s.name)}-`));
      return new Member({
        ...s,
        binary,
        baseDir,
        initialCluster,
        token,
        listenHosts: options.listenHosts ?? [],
        timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        stopTimeoutMs: options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS,
      });
    }),
  );
}

interface MemberConfig {
  readonly name: string;
  readonly binary: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly listenHosts: readonly string[];
  readonly initialCluster: string;
  readonly token: string;
  readonly baseDir: string;
  readonly timeoutMs: number;
  readonly stopTimeoutMs: number;
}

interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly error?: NodeJS.ErrnoException;
}

class Member implements EtcdInstance {
  readonly name: string;
  readonly clientUrl: string;
  readonly endpoints: string[];
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly logFile: string;
  private readonly clients = new Set<Etcd3>();
  private child: ChildProcess | undefined;
  private exitInfo: ExitInfo | undefined;
  private exited: Promise<ExitInfo> = Promise.resolve({ code: null, signal: null });
  private paused = false;
  private stopping: Promise<void> | undefined;

  constructor(private readonly config: MemberConfig) {
    this.name = config.name;
    this.clientUrl = hostUrl('127.0.0.1', config.clientPort);
    this.endpoints = [this.clientUrl, ...config.listenHosts.map((host) => hostUrl(host, config.clientPort))];
    this.peerUrl = hostUrl('127.0.0.1', config.peerPort);
    this.dataDir = path.join(config.baseDir, 'data');
    this.logFile = path.join(config.baseDir, 'etcd.log');
    liveMembers.register(this);
  }

  get pid(): number {
    return this.child?.pid ?? 0;
  }

  get running(): boolean {
    return this.child !== undefined && this.exitInfo === undefined;
  }

  /** Starts the etcd process without waiting for it; `waitHealthy` does that. */
  spawn(): void {
    const log = fs.openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.config.binary, this.args(), { stdio: ['ignore', log, log], env: etcdEnv() });
    } finally {
      fs.closeSync(log);
    }
    // A member left running must not keep mocha (or any process) alive; the exit handler reaps it.
    child.unref();
    this.child = child;
    this.exitInfo = undefined;
    this.paused = false;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
      child.on('error', (error: NodeJS.ErrnoException) => {
        // 'error' without a pid means the spawn itself failed and no 'exit' will follow.
        if (child.pid !== undefined) return;
        this.exitInfo = { code: null, signal: null, error };
        resolve(this.exitInfo);
      });
    });
  }

  /** Polls `/health` every 50 ms until it says true; throws when etcd exits or the deadline passes. */
  async waitHealthy(deadline: number, timeoutMs: number): Promise<void> {
    for (;;) {
      // Racing the exit: a dead etcd should not cost a whole health request timeout.
      if (await Promise.race([this.healthy(), this.exited.then(() => false)])) return;
      if (this.exitInfo !== undefined) throw this.exitedEarly(this.exitInfo);
      if (Date.now() >= deadline) {
        throw this.startFailure(`did not report healthy on ${this.clientUrl}/health within ${timeoutMs} ms`);
      }
      await delay(HEALTH_INTERVAL_MS);
    }
  }

  private async healthy(): Promise<boolean> {
    try {
      const body = await requestJson('GET', `${this.clientUrl}/health`);
      return isRecord(body) && body.health === 'true';
    } catch {
      // Not listening yet, or no leader yet: both mean "not healthy yet".
      return false;
    }
  }

  /** This member's raft id and the leader's id as it sees them, or undefined when it cannot say. */
  async status(): Promise<{ memberId: string; leaderId: string } | undefined> {
    if (!this.running || this.paused) return undefined;
    try {
      const body = await requestJson('POST', `${this.clientUrl}/v3/maintenance/status`, '{}');
      if (!isRecord(body) || !isRecord(body.header)) return undefined;
      const memberId = body.header.member_id;
      const leaderId = body.leader;
      if (typeof memberId !== 'string' || typeof leaderId !== 'string') return undefined;
      return { memberId, leaderId };
    } catch {
      // A member that does not answer knows no leader worth reporting.
      return undefined;
    }
  }

  client(options: Partial<IOptions> = {}): Etcd3 {
    if (this.stopping !== undefined) {
      throw new FleetError('INTERNAL', `etcd "${this.name}" is stopped; start a new one for a client`);
    }
    const client = new Etcd3({ hosts: [this.clientUrl], ...options });
    this.clients.add(client);
    return client;
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    for (const client of this.clients) client.close();
    this.clients.clear();
    await this.terminate();
    await fsp.rm(this.config.baseDir, { recursive: true, force: true, maxRetries: 3 });
    liveMembers.unregister(this);
  }

  /** SIGTERM, then SIGKILL if etcd is still there after `stopTimeoutMs`; resolves once it exited. */
  private async terminate(): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    // The child is unref'd; while we wait for it, it must keep the process alive.
    child.ref();
    // A stopped process only acts on SIGTERM once continued.
    this.resume();
    child.kill('SIGTERM');
    const controller = new AbortController();
    const timer = delay(this.config.stopTimeoutMs, 'timeout' as const, { signal: controller.signal });
    const first = await Promise.race([this.exited, timer.catch(() => 'cancelled' as const)]);
    controller.abort();
    if (first === 'timeout') {
      child.kill('SIGKILL');
      await this.exited;
    }
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    child.ref();
    child.kill('SIGKILL');
    await this.exited;
  }

  pause(): void {
    if (!this.running || this.paused) return;
    this.child?.kill('SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    if (!this.running || !this.paused) return;
    this.child?.kill('SIGCONT');
    this.paused = false;
  }

  async restart(): Promise<void> {
    if (this.stopping !== undefined) {
      throw new FleetError(
        'HARNESS_START_FAILED',
        `etcd "${this.name}" was stopped and its data dir removed; it cannot be restarted`,
      );
    }
    await this.terminate();
    this.spawn();
    try {
      await this.waitHealthy(Date.now() + this.config.timeoutMs, this.config.timeoutMs);
    } catch (error) {
      // Leave it down but restartable; the data dir stays for the next try or the exit handler.
      await this.kill();
      throw error;
    }
  }

  logTail(lines = LOG_TAIL_LINES): string {
    let text: string;
    try {
      text = fs.readFileSync(this.logFile, 'utf8');
    } catch (error) {
      return `(cannot read ${this.logFile}: ${describeError(error)})`;
    }
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  }

  /** Synchronous last resort for process exit: SIGKILL and remove the temp folder. */
  destroySync(): void {
    if (this.running) this.child?.kill('SIGKILL');
    // SIGKILL is asynchronous; the retries cover etcd writing a file while the folder goes away.
    fs.rmSync(this.config.baseDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
  }

  private args(): string[] {
    const flags: [string, string][] = [
      ['--name', this.name],
      ['--data-dir', this.dataDir],
      ['--listen-client-urls', this.endpoints.join(',')],
      ['--advertise-client-urls', this.endpoints.join(',')],
      ['--listen-peer-urls', this.peerUrl],
      ['--initial-advertise-peer-urls', this.peerUrl],
      ['--initial-cluster', this.config.initialCluster],
      ['--initial-cluster-token', this.config.token],
      ['--initial-cluster-state', 'new'],
      ...TUNING_FLAGS,
      ['--logger', 'zap'],
      ['--log-outputs', 'stderr'],
    ];
    return flags.flat();
  }

  private exitedEarly(exit: ExitInfo): FleetError {
    if (exit.error !== undefined) {
      if (exit.error.code === 'ENOENT') return missingBinary(this.config.binary);
      return this.startFailure(`could not be spawned (${exit.error.message})`);
    }
    const how = exit.signal === null ? `with code ${exit.code ?? '?'}` : `on ${exit.signal}`;
    return this.startFailure(`exited ${how} before it became healthy`);
  }

  private startFailure(what: string): FleetError {
    const tail = this.logTail();
    // Another process took a port between findFreePort and etcd's bind: new ports will help.
    const portTaken = /address already in use/.test(tail);
    return new FleetError(
      'HARNESS_START_FAILED',
      `etcd "${this.name}" (${this.config.binary}, client ${this.clientUrl}, peer ${this.peerUrl}) ${what}. ` +
        `Last lines of ${this.logFile}:\n${tail}`,
      { retryable: portTaken },
    );
  }
}

class Cluster implements EtcdCluster {
  readonly endpoints: string[];
  private readonly clients = new Set<Etcd3>();
  private stopping: Promise<void> | undefined;

  constructor(readonly members: readonly Member[]) {
    this.endpoints = members.map((member) => member.clientUrl);
  }

  client(options: Partial<IOptions> = {}): Etcd3 {
    if (this.stopping !== undefined) throw new FleetError('INTERNAL', 'The etcd cluster is stopped');
    const client = new Etcd3({ hosts: this.endpoints, ...options });
    this.clients.add(client);
    return client;
  }

  async leader(): Promise<EtcdInstance | undefined> {
    const statuses = await Promise.all(this.members.map((member) => member.status()));
    const leaderId = statuses.find((status) => status !== undefined && status.leaderId !== '0')?.leaderId;
    const index = statuses.findIndex((status) => status?.memberId === leaderId);
    return index < 0 ? undefined : this.members[index];
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const client of this.clients) client.close();
      this.clients.clear();
      // SIGKILL, not SIGTERM: a leader that gets SIGTERM hands leadership to a peer, and when the
      // peers are stopping too it can pick one that just left and wait for a quorum that never
      // returns (up to stopTimeoutMs). The data is thrown away, so a graceful stop buys nothing.
      await Promise.all(this.members.map((member) => member.kill()));
      await Promise.all(this.members.map((member) => member.stop()));
    })();
    return this.stopping;
  }
}

/**
 * Members whose process or temp folder may still exist. While it is not empty, handlers for process
 * exit and the terminating signals clean them up synchronously.
 */
const liveMembers = new (class LiveMembers {
  private readonly members = new Set<Member>();
  private readonly onExit = (): void => {
    this.destroyAll();
  };
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.destroyAll();
    // Re-raise with the default action (terminate) unless someone else handles the signal.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };

  register(member: Member): void {
    if (this.members.size === 0) this.install();
    this.members.add(member);
  }

  unregister(member: Member): void {
    if (!this.members.delete(member)) return;
    if (this.members.size === 0) this.uninstall();
  }

  private destroyAll(): void {
    for (const member of this.members) member.destroySync();
    this.members.clear();
    this.uninstall();
  }

  private install(): void {
    process.on('exit', this.onExit);
    for (const signal of TERMINATING_SIGNALS) process.on(signal, this.onSignal);
  }

  private uninstall(): void {
    process.off('exit', this.onExit);
    for (const signal of TERMINATING_SIGNALS) process.off(signal, this.onSignal);
  }
})();

function useInSuite<T extends { stop(): Promise<void> }>(
  helper: string,
  options: EtcdOptions,
  start: () => Promise<T>,
): EtcdHandle<T> {
  let current: T | undefined;
  const startBudget = (options.timeoutMs ?? DEFAULT_TIMEOUT_MS) + 5_000;
  const stopBudget = (options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS) + 5_000;
  before(async function () {
    this.timeout(startBudget);
    current = await start();
  });
  after(async function () {
    this.timeout(stopBudget);
    const running = current;
    current = undefined;
    await running?.stop();
  });
  return {
    get current(): T {
      if (current === undefined) {
        throw new FleetError(
          'INTERNAL',
          `${helper}(): no etcd here; use .current inside the tests and hooks of the suite that called it`,
        );
      }
      return current;
    },
  };
}

/** The absolute path of `binary`, searched on PATH unless it contains a slash. */
function resolveBinary(binary: string): string {
  const candidates = binary.includes('/')
    ? [path.resolve(binary)]
    : (process.env.PATH ?? '')
        .split(path.delimiter)
        .filter((dir) => dir !== '')
        .map((dir) => path.join(dir, binary));
  const found = candidates.find(isExecutableFile);
  if (found === undefined) throw missingBinary(binary);
  return found;
}

function isExecutableFile(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    // Missing or not executable: not a candidate.
    return false;
  }
}

function missingBinary(binary: string): FleetError {
  const where = binary.includes('/') ? '' : ' on PATH';
  return new FleetError(
    'HARNESS_MISSING_BINARY',
    `Cannot find the etcd binary "${binary}"${where}; the real-etcd tests need it. ` +
      `Install it with \`${INSTALL_HINT}\`, or pass the binary option.`,
  );
}

/** The environment for etcd: ours minus ETCD_* variables, which etcd would read as flags. */
function etcdEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ETCD_')));
}

function hostUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** One small HTTP request with a JSON answer, without a keep-alive agent that would outlive it. */
function requestJson(method: 'GET' | 'POST', url: string, body?: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, agent: false, timeout: HTTP_TIMEOUT_MS }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
      });
      response.on('error', reject);
      response.on('end', () => {
        try {
          resolve(JSON.parse(text));
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
    request.on('timeout', () => {
      request.destroy(new Error(`${method} ${url} timed out after ${HTTP_TIMEOUT_MS} ms`));
    });
    request.on('error', reject);
    request.end(body);
  });
}

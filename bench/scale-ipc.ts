/**
 * The messages between bench/scale.ts and the processes it forks (bench/scale-worker.ts, running
 * simulated machines, and bench/scale-engine.ts, running the engine). Each child reads its
 * settings from one JSON argument and answers the parent's requests over the fork IPC channel.
 */

/** Settings of a worker process: which simulated machines it runs. */
export interface WorkerSettings {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  /** Index of its first machine, and how many it runs. */
  readonly first: number;
  readonly count: number;
  /** One EtcdRegistry (gRPC channel) per simulated machine, or one shared by the worker's machines. */
  readonly clients: 'per-machine' | 'per-worker';
  readonly agentTtlSeconds: number;
  readonly requestTimeoutMs: number;
}

/** Settings of the engine process. */
export interface EngineSettings {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly reconcileIntervalMs: number;
  readonly requestTimeoutMs: number;
}

/** A process's resource figures at one moment. */
export interface ProcessSample {
  readonly rss: number;
  readonly heapUsed: number;
  /** CPU seconds (user + system) since the process started. */
  readonly cpuSeconds: number;
  /** Highest RSS and heap seen by the process's own 250 ms sampler since the last reset. */
  readonly peakRss: number;
  readonly peakHeapUsed: number;
  /** Worker: units loaded in its simulated systemds. Engine: leader reconciles run. */
  readonly count: number;
  /** etcd requests its registries sent (client-side count), and lease keepalives. */
  readonly requests: number;
  readonly keepalives: number;
  readonly byOperation: Readonly<Record<string, number>>;
}

export type ParentMessage =
  { readonly type: 'sample'; readonly gc: boolean; readonly resetPeak: boolean } | { readonly type: 'stop' };

export type ChildMessage =
  | { readonly type: 'ready'; readonly sample: ProcessSample }
  | { readonly type: 'sample'; readonly sample: ProcessSample }
  | { readonly type: 'error'; readonly message: string }
  | { readonly type: 'stopped' };

/** The process's figures; `extra` supplies the role-specific counts. */
export class Sampler {
  private peakRss = 0;
  private peakHeapUsed = 0;
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.tick();
    this.timer = setInterval(() => {
      this.tick();
    }, 250);
    this.timer.unref();
  }

  reset(): void {
    this.peakRss = 0;
    this.peakHeapUsed = 0;
    this.tick();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  sample(extra: Pick<ProcessSample, 'count' | 'requests' | 'keepalives' | 'byOperation'>): ProcessSample {
    this.tick();
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    return {
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      peakRss: this.peakRss,
      peakHeapUsed: this.peakHeapUsed,
      ...extra,
    };
  }

  private tick(): void {
    const mem = process.memoryUsage();
    this.peakRss = Math.max(this.peakRss, mem.rss);
    this.peakHeapUsed = Math.max(this.peakHeapUsed, mem.heapUsed);
  }
}

/** Sends a message to the parent (no-op without an IPC channel). */
export function toParent(message: ChildMessage): void {
  process.send?.(message);
}

/** Adds `from` into `into`, per key. */
export function addCounts(into: Record<string, number>, from: Readonly<Record<string, number>>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

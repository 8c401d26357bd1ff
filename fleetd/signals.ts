import type { Clock } from '../lib/clock.js';
import { describeError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

/**
 * fleetd's signal policy (docs/fleet-compat.md §5.7, with the agent's shutdown policy):
 *
 * | signal          | action                                                                      |
 * |-----------------|-----------------------------------------------------------------------------|
 * | SIGTERM, SIGINT,| `Gracefully shutting down`: stop (engine resigns, agent stops, API closed), |
 * | SIGUSR2         | then exit 0. Whether the units stop and the machine leaves (a stop) or stay  |
 * |                 | for the next fleetd (a restart) is decided by the target from systemd's job |
 * |                 | on fleetd and the signal (shutdown-mode.ts). A second one, or `forceAfterMs`|
 * |                 | (30 s) without finishing, forces exit 1.                                     |
 * | SIGHUP          | reload the configuration (logged; what changed is applied, see fleetd.ts).  |
 * | SIGUSR1         | log a one-line status dump.                                                 |
 */

/** The part of `process` the handlers use. */
export interface SignalSource {
  on(signal: NodeJS.Signals, listener: () => void): unknown;
  off(signal: NodeJS.Signals, listener: () => void): unknown;
}

/** What the signals act on. */
export interface SignalTarget {
  /** Stops the daemon on `signal`; resolves when it has stopped. */
  stop(signal: NodeJS.Signals): Promise<void>;
  /** Reloads the configuration; a rejection means the daemon could not go on (exit 1). */
  reload(): Promise<void>;
  /** Fields for the SIGUSR1 dump. */
  status(): Readonly<Record<string, unknown>>;
}

export interface SignalOptions {
  readonly source: SignalSource;
  readonly target: SignalTarget;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Ends the process; main passes `process.exit`. */
  readonly exit: (code: number) => void;
  /** How long a graceful stop may take before the exit is forced; default 30 s. */
  readonly forceAfterMs?: number;
}

/** The stop deadline of fleetd. */
export const FORCE_EXIT_AFTER_MS = 30_000;

/**
 * Installs the handlers; returns a function that removes them. The first SIGTERM/SIGINT starts
 * the graceful stop; reloads are serialized by the target and ignored once stopping.
 */
export function handleSignals(options: SignalOptions): () => void {
  const { source, target, logger, clock, exit } = options;
  const forceAfterMs = options.forceAfterMs ?? FORCE_EXIT_AFTER_MS;
  let stopping = false;
  let exited = false;
  const deadline = new AbortController();
  const finish = (code: number): void => {
    if (exited) return;
    exited = true;
    deadline.abort();
    exit(code);
  };

  const onStop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn('second stop signal; forcing exit', { signal });
      finish(1);
      return;
    }
    stopping = true;
    logger.info('Gracefully shutting down', { signal, forceAfterMs });
    clock.sleep(forceAfterMs, deadline.signal).then(
      () => {
        logger.error('shutdown did not finish in time; forcing exit', { forceAfterMs });
        finish(1);
      },
      () => undefined,
    );
    target.stop(signal).then(
      () => {
        finish(0);
      },
      (err: unknown) => {
        logger.error('shutdown failed', { error: describeError(err) });
        finish(1);
      },
    );
  };
  const onReload = (): void => {
    if (stopping) {
      logger.info('SIGHUP ignored: shutting down');
      return;
    }
    target.reload().catch((err: unknown) => {
      logger.error('fleetd cannot go on after the reload; exiting', { error: describeError(err) });
      finish(1);
    });
  };
  const onDump = (): void => {
    logger.info('Dumping server state', { ...target.status() });
  };

  const handlers: [NodeJS.Signals, () => void][] = [
    [
      'SIGTERM',
      () => {
        onStop('SIGTERM');
      },
    ],
    [
      'SIGINT',
      () => {
        onStop('SIGINT');
      },
    ],
    [
      'SIGUSR2',
      () => {
        onStop('SIGUSR2');
      },
    ],
    ['SIGHUP', onReload],
    ['SIGUSR1', onDump],
  ];
  for (const [signal, handler] of handlers) source.on(signal, handler);
  return () => {
    for (const [signal, handler] of handlers) source.off(signal, handler);
    deadline.abort();
  };
}

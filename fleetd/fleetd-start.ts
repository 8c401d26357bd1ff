import type { SystemdManager } from '../agent/systemd-manager.js';
import { Backoff } from '../lib/backoff.js';
import type { Clock } from '../lib/clock.js';
import { FleetError, describeError, isFleetError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { formatGoDuration } from './config-values.js';
import type { FleetdAgent } from './fleetd-components.js';

/**
 * Connects to systemd, retrying a retryable failure (the bus not answering yet) with backoff for
 * `timeoutMs`; then, or at once for a non-retryable failure, rejects with the last error.
 * Rejects with ABORTED when `signal` aborts.
 */
export async function connectSystemd(options: {
  readonly connect: () => Promise<SystemdManager>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}): Promise<SystemdManager> {
  const { clock, logger, signal } = options;
  const deadline = clock.now() + options.timeoutMs;
  const backoff = new Backoff({ initialMs: 250, maxMs: 5000 });
  for (;;) {
    try {
      return await options.connect();
    } catch (err) {
      if (!isFleetError(err) || !err.retryable || clock.now() >= deadline || signal.aborted) throw err;
      const delay = backoff.next();
      logger.warn('cannot connect to systemd; retrying', { error: describeError(err), retryInMs: delay });
      await clock.sleep(delay, signal);
    }
  }
}

/**
 * Starts the agent. etcd being unreachable is retried by the agent itself for as long as it
 * takes. A machine ID held by a live presence is retried every second for about agent_ttl (plus
 * a second): it may be this machine's own presence from before a reboot (another boot ID) that
 * has not expired yet. After that it is fatal, with a message that says what to do: two
 * machines share one machine ID, or another fleetd runs here.
 */
export async function startAgent(
  agent: FleetdAgent,
  options: {
    readonly clock: Clock;
    readonly logger: Logger;
    readonly agentTtlMs: number;
    readonly signal: AbortSignal;
  },
): Promise<void> {
  const { clock, logger, agentTtlMs, signal } = options;
  const deadline = clock.now() + agentTtlMs + 1000;
  for (;;) {
    try {
      await agent.start(signal);
      return;
    } catch (err) {
      if (!isFleetError(err, 'MACHINE_ID_IN_USE') || signal.aborted) throw err;
      if (clock.now() >= deadline) {
        throw new FleetError(
          'MACHINE_ID_IN_USE',
          `${err.message} It stayed in use for longer than agent_ttl (${formatGoDuration(agentTtlMs)}), so it is ` +
            'not a stale presence of this machine. Give each machine its own /etc/machine-id ' +
            '(systemd-machine-id-setup), or stop the other fleetd.',
          { cause: err },
        );
      }
      logger.warn('machine ID in use; waiting for the other presence to expire', {
        error: err.message,
        giveUpInMs: deadline - clock.now(),
      });
      await clock.sleep(1000, signal);
    }
  }
}

/**
 * Why fleetd is stopping, and so what it does with its units (the shutdown policy, README
 * "Stopping and restarting fleetd"):
 *
 * - `restart`: a restart of fleetd (`systemctl restart fleetd`, a package upgrade's restart).
 *   Units are left untouched and the machine's presence is left to its lease, so that the next
 *   fleetd takes it over and adopts the running units: no unit moves, no main PID changes.
 * - `stop`: fleetd is stopped for good (`systemctl stop fleetd`, a system shutdown). Every unit
 *   fleet runs on the machine is stopped and unloaded, then the presence is revoked at once: the
 *   machine leaves the cluster and the engine runs its units elsewhere, never two at once.
 */
export type ShutdownMode = 'restart' | 'stop';

export interface ShutdownDecision {
  readonly mode: ShutdownMode;
  /** Why, for the log. */
  readonly reason: string;
}

/** systemd job types that end with fleetd started again (after job_type_collapse). */
const RESTART_JOBS: ReadonlySet<string> = new Set(['restart', 'try-restart', 'reload-or-restart']);

/**
 * Decides the shutdown mode from the job systemd runs on fleetd's own unit when the signal came
 * (`pendingJobOf`) and the signal. systemd's answer wins: a `restart` job is a restart, a `stop`
 * job (also a system shutdown's) a stop. Without an answer (fleetd not started by systemd, or
 * signalled by hand with `kill`), the signal decides: SIGUSR2 is a restart (the new fleetd is
 * started by whoever sent it), SIGTERM and SIGINT a stop, as fleet's fleetd did on any exit.
 */
export function decideShutdown(jobType: string | undefined, signal: string): ShutdownDecision {
  if (jobType !== undefined && RESTART_JOBS.has(jobType))
    return { mode: 'restart', reason: `systemd is restarting fleetd (job ${jobType})` };
  if (jobType === 'stop') return { mode: 'stop', reason: 'systemd is stopping fleetd (job stop)' };
  const why = jobType === undefined ? 'no systemd job on fleetd' : `systemd job ${jobType} on fleetd`;
  if (signal === 'SIGUSR2') return { mode: 'restart', reason: `${why}; ${signal} asks for a restart` };
  return { mode: 'stop', reason: `${why}; ${signal} asks for a stop` };
}

import type { LogFields, Logger, LogLevel } from '../lib/logger.js';

const RANK: Readonly<Record<LogLevel, number>> = { error: 0, warn: 1, info: 2, debug: 3 };

/** fleet's verbosity: 0 logs info and above, anything higher adds debug. */
export function levelForVerbosity(verbosity: number): LogLevel {
  return verbosity > 0 ? 'debug' : 'info';
}

/** A shared, changeable level. */
class LevelHolder {
  constructor(public level: LogLevel) {}
}

class GatedLogger implements Logger {
  constructor(
    private readonly inner: Logger,
    private readonly holder: LevelHolder,
  ) {}
  private on(level: LogLevel): boolean {
    return RANK[level] <= RANK[this.holder.level];
  }
  error(message: string, fields?: LogFields): void {
    if (this.on('error')) this.inner.error(message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    if (this.on('warn')) this.inner.warn(message, fields);
  }
  info(message: string, fields?: LogFields): void {
    if (this.on('info')) this.inner.info(message, fields);
  }
  debug(message: string, fields?: LogFields): void {
    if (this.on('debug')) this.inner.debug(message, fields);
  }
  child(fields: LogFields): Logger {
    return new GatedLogger(this.inner.child(fields), this.holder);
  }
}

/**
 * A logger whose level can change while the daemon runs (SIGHUP applies `verbosity`), for every
 * child logger handed out before too. `inner` must let every level through (create it at
 * `debug`); the gate drops what is below the current level.
 */
export class AdjustableLogger {
  private readonly holder: LevelHolder;
  /** The logger to hand to components. */
  readonly logger: Logger;

  constructor(inner: Logger, level: LogLevel) {
    this.holder = new LevelHolder(level);
    this.logger = new GatedLogger(inner, this.holder);
  }

  get level(): LogLevel {
    return this.holder.level;
  }

  set level(level: LogLevel) {
    this.holder.level = level;
  }
}

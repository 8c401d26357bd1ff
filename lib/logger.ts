import { fstatSync } from 'node:fs';
import winston from 'winston';

/** Structured fields attached to a log line. */
export type LogFields = Readonly<Record<string, unknown>>;

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

/**
 * The logger every component takes in its deps. Messages are constant text; data goes in fields,
 * so journald and log search keep them apart: `log.info('unit scheduled', { unit, machine })`.
 * `error` means a human must act.
 */
export interface Logger {
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line, e.g. `{ component: 'engine' }`. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  readonly level?: LogLevel;
  /** JSON lines (for journald) or readable text; defaults to JSON unless stderr is a terminal. */
  readonly json?: boolean;
  /**
   * Whether each line carries its own timestamp. Default: not when stderr goes to journald
   * (which stamps every line itself), else yes.
   */
  readonly timestamps?: boolean;
}

/**
 * True when stderr is the journal: systemd sets `JOURNAL_STREAM=<device>:<inode>` for a service
 * whose output goes to journald, and it holds only while stderr is still that stream.
 */
export function stderrIsJournal(
  env: Readonly<Record<string, string | undefined>> = process.env,
  stat: () => { dev: number; ino: number } | undefined = () => {
    try {
      return fstatSync(2);
    } catch {
      return undefined;
    }
  },
): boolean {
  const stream = env.JOURNAL_STREAM;
  if (stream === undefined) return false;
  const match = /^(\d+):(\d+)$/.exec(stream);
  const fd = stat();
  return match !== null && fd !== undefined && Number(match[1]) === fd.dev && Number(match[2]) === fd.ino;
}

class WinstonLogger implements Logger {
  constructor(private readonly inner: winston.Logger) {}
  error(message: string, fields?: LogFields): void {
    this.inner.error(message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.inner.warn(message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.inner.info(message, fields);
  }
  debug(message: string, fields?: LogFields): void {
    this.inner.debug(message, fields);
  }
  child(fields: LogFields): Logger {
    return new WinstonLogger(this.inner.child(fields));
  }
}

/** A winston-backed logger writing to stderr. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const json = options.json ?? !process.stderr.isTTY;
  const stamped = options.timestamps ?? !stderrIsJournal();
  const none = winston.format((info) => info);
  const format = json
    ? winston.format.combine(
        stamped ? winston.format.timestamp() : none(),
        winston.format.errors({ stack: true }),
        winston.format.json(),
      )
    : winston.format.combine(
        stamped ? winston.format.timestamp({ format: 'YYYY-MM-DD HH:mm:ss.SSS' }) : none(),
        winston.format.printf((info) => {
          const { timestamp, level, message, ...rest } = info;
          const fields = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
          const stamp = typeof timestamp === 'string' ? `${timestamp} ` : '';
          return `${stamp}${level.toUpperCase()} ${String(message)}${fields}`;
        }),
      );
  const inner = winston.createLogger({
    level: options.level ?? 'info',
    format,
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
  });
  return new WinstonLogger(inner);
}

/** One recorded line of a MemoryLogger. */
export interface LogRecord {
  readonly level: LogLevel;
  readonly message: string;
  readonly fields: LogFields;
}

/** A logger that keeps lines in memory, for tests that assert what was logged. */
export class MemoryLogger implements Logger {
  constructor(
    readonly records: LogRecord[] = [],
    private readonly base: LogFields = {},
  ) {}
  private add(level: LogLevel, message: string, fields?: LogFields): void {
    this.records.push({ level, message, fields: { ...this.base, ...fields } });
  }
  error(message: string, fields?: LogFields): void {
    this.add('error', message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.add('warn', message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.add('info', message, fields);
  }
  debug(message: string, fields?: LogFields): void {
    this.add('debug', message, fields);
  }
  child(fields: LogFields): Logger {
    return new MemoryLogger(this.records, { ...this.base, ...fields });
  }
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  child: () => silentLogger,
};

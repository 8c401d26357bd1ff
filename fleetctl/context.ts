import { escapeMessage } from './terminal-text.js';
import type { Command } from 'commander';
import { FleetError, isFleetError } from '../lib/errors.js';
import { FLEET_BLOCK_TIMING, type BlockTiming } from './blocking.js';
import { FleetClient } from './client.js';
import { resolveGlobalOptions, type GlobalOptions } from './global-options.js';
import { MachineDirectory } from './machines.js';
import { defaultRunner, openTunnel, type CommandRunner } from './ssh.js';
import { Transport, parseEndpoint } from './transport.js';

/**
 * What one fleetctl run needs from the world, injected so the whole CLI runs in-process in tests:
 * environment, streams, working directory, the blocking cadence, how child processes (ssh,
 * systemctl, journalctl) are run, and where the local machine ID is read from.
 */
export interface RunOptions {
  /** Environment variables (`FLEETCTL_*`, `HOME`, `PATH` for ssh); default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly stdout?: NodeJS.WritableStream;
  readonly stderr?: NodeJS.WritableStream;
  /** Read by `fd-forward` and handed to ssh; default `process.stdin`. */
  readonly stdin?: NodeJS.ReadableStream;
  /** Where relative unit-file paths are resolved; default `process.cwd()`. */
  readonly cwd?: string;
  /** Poll cadence while blocking; default 100 ms polls in fleet's 2 s attempts. */
  readonly timing?: BlockTiming;
  /** Runs ssh and local commands; default spawns them with this run's streams. */
  readonly runner?: CommandRunner;
  /** The file holding this host's machine ID; default `/etc/machine-id`. */
  readonly machineIdFile?: string;
}

/**
 * The state of one run shared by the commands: output helpers, the resolved global options and a
 * lazily created API client. `close()` releases the client's connections.
 */
export class Context {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly stdin: NodeJS.ReadableStream;
  readonly cwd: string;
  readonly timing: BlockTiming;
  readonly runner: CommandRunner;
  readonly machineIdFile: string;
  /** The exit code the finished command asked for. */
  exitCode = 0;
  private program: Command | undefined;
  private resolved: GlobalOptions | undefined;
  private transport: Transport | undefined;
  private apiClient: FleetClient | undefined;
  private directory: MachineDirectory | undefined;

  constructor(options: RunOptions = {}) {
    this.env = options.env ?? process.env;
    this.stdout = options.stdout ?? process.stdout;
    this.stderr = options.stderr ?? process.stderr;
    this.stdin = options.stdin ?? process.stdin;
    this.cwd = options.cwd ?? process.cwd();
    this.timing = options.timing ?? FLEET_BLOCK_TIMING;
    this.runner =
      options.runner ??
      defaultRunner({
        stdin: this.stdin,
        stdout: this.stdout,
        stderr: this.stderr,
        cwd: this.cwd,
        env: this.env,
      });
    this.machineIdFile = options.machineIdFile ?? '/etc/machine-id';
  }

  /** Binds the parsed program, whose options `globals()` reads. */
  attach(program: Command): void {
    this.program = program;
  }

  /** Writes a line to stdout (fleet's `stdout()`), control characters escaped (terminal-text.ts). */
  out(line: string): void {
    this.stdout.write(`${escapeMessage(line)}\n`);
  }

  /** Writes a line to stderr (fleet's `stderr()`), control characters escaped (terminal-text.ts). */
  err(line: string): void {
    this.stderr.write(`${escapeMessage(line)}\n`);
  }

  /** Writes text to stdout as is. */
  write(text: string): void {
    this.stdout.write(text);
  }

  /** A `WARNING: ...` line on stderr. */
  warn(message: string): void {
    this.err(`WARNING: ${message}`);
  }

  /** A `DEBUG: ...` line on stderr when `--debug` (or `FLEETCTL_DEBUG`) is on. */
  debug(message: string): void {
    if (this.globals().debug) this.err(`DEBUG: ${message}`);
  }

  /** The global options: command line, then `FLEETCTL_*`, then defaults. Throws `USAGE_INVALID`. */
  globals(): GlobalOptions {
    if (this.resolved !== undefined) return this.resolved;
    if (this.program === undefined) throw new FleetError('INTERNAL', 'global options read before parsing');
    this.resolved = resolveGlobalOptions(this.program, this.env);
    return this.resolved;
  }

  /**
   * The API client, created on first use. Fails with `USAGE_INVALID` for a driver other than API
   * (fleet's etcd driver is not supported) or an endpoint that cannot be used.
   */
  client(): FleetClient {
    if (this.apiClient !== undefined) return this.apiClient;
    const g = this.globals();
    if (g.driver.toLowerCase() === 'etcd') {
      throw new FleetError(
        'USAGE_INVALID',
        'Unable to initialize client: the etcd driver is not supported by fleet-ts; fleetctl talks to ' +
          "fleetd's API only (use --driver=API, the default, with --endpoint)",
      );
    }
    if (g.driver !== 'API') {
      throw new FleetError(
        'USAGE_INVALID',
        `Unable to initialize client: unrecognized driver ${JSON.stringify(g.driver)}`,
      );
    }
    if (g.requestTimeout <= 0) {
      throw new FleetError(
        'USAGE_INVALID',
        'Unable to initialize client: --request-timeout must be greater than 0',
      );
    }
    try {
      const parsed = parseEndpoint(g.endpoint);
      if (parsed.warning !== undefined) this.warn(parsed.warning);
      const { endpoint } = parsed;
      this.transport = new Transport({
        endpoint,
        timeoutMs: g.requestTimeout * 1000,
        tls: { caFile: g.caFile, certFile: g.certFile, keyFile: g.keyFile },
        ...(g.tunnel === '' ? {} : { tunnel: openTunnel(this, endpoint) }),
        debug: (line) => {
          this.debug(line);
        },
      });
    } catch (err) {
      if (isFleetError(err, 'USAGE_INVALID')) {
        throw new FleetError('USAGE_INVALID', `Unable to initialize client: ${err.message}`, { cause: err });
      }
      throw err;
    }
    this.apiClient = new FleetClient(this.transport);
    return this.apiClient;
  }

  /** Machines by ID, fetched once and again when an unknown ID turns up. */
  machines(): MachineDirectory {
    this.directory ??= new MachineDirectory(this.client());
    return this.directory;
  }

  /** Releases the API client's connections. */
  close(): void {
    this.transport?.close();
  }
}

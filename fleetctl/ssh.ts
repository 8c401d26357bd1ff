import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { constants } from 'node:os';
import { dirname } from 'node:path';
import { Duplex } from 'node:stream';
import { FleetError, describeError } from '../lib/errors.js';
import type { Context } from './context.js';
import type { GlobalOptions } from './global-options.js';
import type { Endpoint, TunnelDialer } from './transport.js';

/**
 * Reaching machines: fleetctl runs the system `ssh` client (so the user's ssh config, agent and
 * keys apply) with options from the global flags, or runs the command directly when the target is
 * this very machine. Also the `--tunnel` transport for the API: an ssh process whose stdin and
 * stdout carry the HTTP connection, through `fleetctl fd-forward` on the tunnel host for a unix
 * socket endpoint, or `ssh -W host:port` for a TCP one.
 */

/** Runs a program to completion with the run's streams; resolves with its exit status. */
export interface CommandRunner {
  /**
   * Runs `command` with `args`. Resolves with the exit code (128 + signal number when killed by a
   * signal); rejects when the program cannot be started at all (not installed, say).
   */
  run(command: string, args: readonly string[]): Promise<number>;
}

interface RunnerStreams {
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const number = signal === null ? undefined : constants.signals[signal];
  return 128 + (number ?? 0);
}

/**
 * The real runner: spawns the program. Streams that are the process's own are inherited (so an
 * interactive ssh gets the terminal); others are piped, which is how in-process tests capture.
 */
export function defaultRunner(streams: RunnerStreams): CommandRunner {
  return {
    run: (command, args) =>
      new Promise<number>((resolve, reject) => {
        const own = (s: unknown, p: unknown): 'inherit' | 'pipe' => (s === p ? 'inherit' : 'pipe');
        const child = spawn(command, [...args], {
          cwd: streams.cwd,
          env: { ...streams.env },
          stdio: [
            streams.stdin === process.stdin ? 'inherit' : 'ignore',
            own(streams.stdout, process.stdout),
            own(streams.stderr, process.stderr),
          ],
        });
        child.stdout?.pipe(streams.stdout, { end: false });
        child.stderr?.pipe(streams.stderr, { end: false });
        child.once('error', reject);
        child.once('close', (code, signal) => {
          resolve(exitStatus(code, signal));
        });
      }),
  };
}

/** `host[:port]`, with fleet's default port 22. */
export function splitHostPort(address: string, defaultPort = 22): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(address);
  if (bracketed !== null) return { host: bracketed[1] ?? '', port: Number(bracketed[2] ?? defaultPort) };
  const colons = address.split(':').length - 1;
  if (colons === 1) {
    const [host = '', port = ''] = address.split(':');
    if (/^\d+$/.test(port)) return { host, port: Number(port) };
  }
  return { host: address, port: defaultPort };
}

/** What one ssh invocation needs beyond the global flags. */
export interface SshTarget {
  readonly host: string;
  readonly port: number;
  readonly forwardAgent?: boolean;
  /** Force a terminal (`-t`), for interactive commands. */
  readonly tty?: boolean;
  /** Extra options before the host, such as `-W host:port`. */
  readonly extra?: readonly string[];
}

/**
 * The ssh command line for a target: host-key checking as `--strict-host-key-checking` says (ask
 * about unknown hosts and refuse changed keys, as fleet did, or accept anything), the known-hosts
 * file, `--ssh-timeout` as ConnectTimeout (whole seconds), `--ssh-username`, the port, and
 * `--tunnel` as a ProxyJump host.
 */
export function sshArgs(g: GlobalOptions, target: SshTarget, remote: readonly string[] = []): string[] {
  const args = [
    '-o',
    `StrictHostKeyChecking=${g.strictHostKeyChecking ? 'ask' : 'no'}`,
    '-o',
    `UserKnownHostsFile=${g.knownHostsFile}`,
    '-o',
    `ConnectTimeout=${Math.max(1, Math.ceil(g.sshTimeout))}`,
    '-l',
    g.sshUsername,
    '-p',
    String(target.port),
  ];
  if (g.tunnel !== '') {
    const jump = splitHostPort(g.tunnel);
    args.push(
      '-J',
      `${g.sshUsername}@${jump.host.includes(':') ? `[${jump.host}]` : jump.host}:${jump.port}`,
    );
  }
  if (target.forwardAgent === true) args.push('-A');
  if (target.tty === true) args.push('-t');
  // `--` ends ssh's options: a host or command word that starts with `-` (a forged machine record
  // such as `-oProxyCommand=...`) is never read as an option that runs a local command.
  args.push(...(target.extra ?? []), '--', target.host, ...remote);
  return args;
}

/**
 * The ssh host and port of a machine's public IP as the API reports it (`IP` or `IP:port`, IPv6
 * in brackets with a port). Anything else came from a broken or forged machine record, which
 * anyone who can write etcd can make: throws `API_ERROR` naming it rather than hand it to ssh.
 */
export function machineAddress(
  machineId: string,
  primaryIP: string | undefined,
  defaultPort: number,
): { host: string; port: number } {
  if (primaryIP === undefined || primaryIP === '')
    throw new FleetError('API_ERROR', 'Could not determine address of machine.');
  const address = splitHostPort(primaryIP, defaultPort);
  if (isIP(address.host) === 0 || !Number.isInteger(address.port) || address.port < 1 || address.port > 65535)
    throw new FleetError(
      'API_ERROR',
      `Machine ${machineId} has an invalid address ${JSON.stringify(primaryIP)}: not an IP address; refusing to connect`,
    );
  return address;
}

const SHELL_SAFE = /^[A-Za-z0-9@%+=:,./_-]+$/;

/** Quotes one word for the remote shell; plain words (unit names, flags) stay as they are. */
export function shellQuote(word: string): string {
  return SHELL_SAFE.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** This host's machine ID (`/etc/machine-id`), or undefined when it cannot be read. */
export async function localMachineId(ctx: Context): Promise<string | undefined> {
  try {
    const id = (await readFile(ctx.machineIdFile, 'utf8')).trim();
    return id === '' ? undefined : id;
  } catch {
    // No machine ID (not systemd, or not readable): treat every machine as remote.
    return undefined;
  }
}

/** fleet kept known hosts under ~/.fleetctl; ssh does not create the folder, so we do. */
async function ensureKnownHostsDir(ctx: Context, file: string): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  } catch (err) {
    ctx.warn(`cannot create the folder of --known-hosts-file ${file}: ${describeError(err)}`);
  }
}

/** Where and how to run a command on a machine. */
export interface MachineCommand {
  readonly machineId: string;
  /** The command and its arguments; quoted for the remote shell when sent over ssh. */
  readonly command: readonly string[];
  readonly sshPort: number;
  readonly forwardAgent?: boolean;
  readonly tty?: boolean;
}

/**
 * Runs a command on a machine: directly when the machine is this host (its ID equals
 * /etc/machine-id), otherwise over ssh to the machine's public IP. Resolves with the command's
 * exit status (ssh's own failures exit 255). Throws `FleetError` with fleet's messages when the
 * machine is unknown or has no address, or when ssh cannot be started.
 */
export async function runOnMachine(ctx: Context, spec: MachineCommand): Promise<number> {
  const [program, ...rest] = spec.command;
  if (program !== undefined && spec.machineId === (await localMachineId(ctx))) {
    ctx.debug(`running locally: ${spec.command.join(' ')}`);
    return runProgram(ctx, program, rest, 'Unable to run command');
  }
  const machine = await ctx.machines().get(spec.machineId);
  const { host, port } = machineAddress(spec.machineId, machine?.primaryIP, spec.sshPort);
  const g = ctx.globals();
  await ensureKnownHostsDir(ctx, g.knownHostsFile);
  const args = sshArgs(
    g,
    { host, port, forwardAgent: spec.forwardAgent, tty: spec.tty },
    spec.command.map(shellQuote),
  );
  ctx.debug(`running ssh ${args.join(' ')}`);
  return runProgram(ctx, 'ssh', args, 'Unable to SSH to remote host');
}

/** Runs a program with the context's runner, turning a failure to start it into a FleetError. */
export async function runProgram(
  ctx: Context,
  program: string,
  args: readonly string[],
  what: string,
): Promise<number> {
  try {
    return await ctx.runner.run(program, args);
  } catch (err) {
    throw new FleetError('INTERNAL', `${what}: cannot run ${program}: ${describeError(err)}`, { cause: err });
  }
}

/** A child process's stdin and stdout as one duplex stream, usable as an HTTP connection. */
class ChildProcessSocket extends Duplex {
  constructor(private readonly child: ChildProcess) {
    super();
    const { stdout } = child;
    stdout?.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) stdout.pause();
    });
    stdout?.on('end', () => this.push(null));
    child.once('error', (err) => this.destroy(err));
    child.once('close', () => this.push(null));
  }

  override _read(): void {
    this.child.stdout?.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.child.stdin === null) callback(new Error('tunnel process has no stdin'));
    else this.child.stdin.write(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.child.stdin?.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.child.kill();
    callback(error);
  }

  // What http.Agent and ClientRequest call on a net.Socket; a pipe has nothing to configure.
  setKeepAlive(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}

/**
 * The `--tunnel` dialer for the API endpoint: every connection is an ssh process to the tunnel
 * host, running `fleetctl fd-forward <socket>` there for a unix endpoint (as fleet does) or
 * forwarding to `host:port` with `ssh -W` for an http(s) one. ssh's stderr goes to ours.
 */
export function openTunnel(ctx: Context, endpoint: Endpoint): TunnelDialer {
  return () => {
    const g = ctx.globals();
    const { host, port } = splitHostPort(g.tunnel);
    const noJump = { ...g, tunnel: '' };
    const args =
      endpoint.kind === 'unix'
        ? sshArgs(noJump, { host, port }, ['fleetctl', 'fd-forward', shellQuote(endpoint.socketPath)])
        : sshArgs(noJump, {
            host,
            port,
            extra: [
              '-W',
              `${endpoint.url.hostname}:${endpoint.url.port === '' ? (endpoint.kind === 'https' ? '443' : '80') : endpoint.url.port}`,
            ],
          });
    ctx.debug(`tunnel: ssh ${args.join(' ')}`);
    const child = spawn('ssh', args, { cwd: ctx.cwd, env: { ...ctx.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stderr.pipe(ctx.stderr, { end: false });
    return new ChildProcessSocket(child);
  };
}

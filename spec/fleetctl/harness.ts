/**
 * fleetctl under test: a real ApiServer on a temp unix socket, backed by an InMemoryRegistry that
 * the test seeds and drives as the engine and agents would (machines, placements, unit states,
 * unplaceable reasons), and fleetctl itself run in-process with captured output.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { silentLogger } from '../../lib/logger.js';
import { ApiServer } from '../../fleetd/api/server.js';
import { InMemoryRegistry } from '../../registry/in-memory-registry.js';
import type { Leadership, MachinePresence } from '../../registry/registry.js';
import type { DesiredState } from '../../unit/states.js';
import type { BlockTiming } from '../../fleetctl/blocking.js';
import { run, type RunOptions } from '../../fleetctl/program.js';
import type { CommandRunner } from '../../fleetctl/ssh.js';
import { machineRecord, unitRecord, unitState } from '../helpers/registry-builders.js';

/** What one fleetctl run printed, and how it exited. */
export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Fast blocking for tests: 10 ms polls in 100 ms attempts. */
export const FAST: BlockTiming = { pollMs: 10, attemptMs: 100 };

/** Two 32-character machine IDs, as systemd makes them. */
export const M1 = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
/** The second machine ID. */
export const M2 = 'f0e1d2c3b4a5968778695a4b3c2d1e0f';

/** Collects everything written to a stream. */
export function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

/** A runner that records what would have been run and answers with `code` (and optional output). */
export class RecordingRunner implements CommandRunner {
  readonly calls: { command: string; args: readonly string[] }[] = [];
  constructor(
    private readonly code = 0,
    private readonly output = '',
    private readonly stdout?: NodeJS.WritableStream,
  ) {}
  run(command: string, args: readonly string[]): Promise<number> {
    this.calls.push({ command, args });
    if (this.output !== '') this.stdout?.write(this.output);
    return Promise.resolve(this.code);
  }
}

/** Options of one in-process run. */
export interface HarnessRun {
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
  readonly timing?: BlockTiming;
  readonly runner?: CommandRunner;
  readonly machineIdFile?: string;
  readonly stdin?: NodeJS.ReadableStream;
  /** Leave FLEETCTL_ENDPOINT unset (to test the default or a flag). */
  readonly noEndpoint?: boolean;
}

/** One API server and registry per test. */
export class Harness {
  readonly presences = new Map<string, MachinePresence>();
  private leadership: Leadership | undefined;

  private constructor(
    readonly registry: InMemoryRegistry,
    readonly server: ApiServer,
    readonly dir: string,
    readonly socket: string,
  ) {}

  /** Starts a server on `<tmp>/fleet.sock`; `tokenLimit` sets the API page size. */
  static async start(tokenLimit?: number): Promise<Harness> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'fleetctl-spec-'));
    const registry = new InMemoryRegistry();
    const server = new ApiServer({
      registry,
      logger: silentLogger,
      ...(tokenLimit === undefined ? {} : { tokenLimit }),
    });
    const socket = path.join(dir, 'fleet.sock');
    await server.listenUnix(socket);
    return new Harness(registry, server, dir, socket);
  }

  /** The endpoint URL of the server. */
  get endpoint(): string {
    return `unix://${this.socket}`;
  }

  /** Runs fleetctl in-process against this server (FLEETCTL_ENDPOINT, HOME in the temp folder). */
  async run(args: readonly string[], options: HarnessRun = {}): Promise<RunResult> {
    const out = sink();
    const err = sink();
    const env: Record<string, string | undefined> = {
      PATH: process.env.PATH,
      HOME: this.dir,
      ...(options.noEndpoint === true ? {} : { FLEETCTL_ENDPOINT: this.endpoint }),
      ...options.env,
    };
    const runOptions: RunOptions = {
      env,
      stdout: out.stream,
      stderr: err.stream,
      stdin: options.stdin ?? new PassThrough(),
      cwd: options.cwd ?? this.dir,
      timing: options.timing ?? FAST,
      machineIdFile: options.machineIdFile ?? path.join(this.dir, 'no-machine-id'),
      ...(options.runner === undefined ? {} : { runner: options.runner }),
    };
    const code = await run(args, runOptions);
    return { code, stdout: out.text(), stderr: err.text() };
  }

  /** Writes a file under the temp folder (creating folders); returns its path. */
  async file(relative: string, contents: string): Promise<string> {
    const full = path.join(this.dir, relative);
    await mkdir(path.dirname(full), { recursive: true });
    await writeFile(full, contents);
    return full;
  }

  /** Announces a live machine. */
  async machine(id: string, ip: string, metadata: Record<string, string> = {}): Promise<MachinePresence> {
    const p = await this.registry.announceMachine(machineRecord(id, metadata, ip), 30);
    this.presences.set(id, p);
    return p;
  }

  /** Submits a unit directly (as another client would). */
  async unit(
    name: string,
    desired: DesiredState = 'inactive',
    fleetLines: readonly string[] = [],
    execStart?: string,
  ): Promise<void> {
    await this.registry.submitUnit(unitRecord(name, fleetLines, execStart), desired);
  }

  private async lead(): Promise<Leadership> {
    this.leadership ??= await this.registry.campaign('test-engine', 10, new AbortController().signal);
    return this.leadership;
  }

  /** The engine places a unit on a machine. */
  async place(unit: string, machine: string, desired: DesiredState = 'launched'): Promise<void> {
    const stored = await this.registry.getUnit(unit);
    const hash = stored?.unit.hash ?? 'h';
    await this.registry.applySchedule(
      [{ kind: 'put', placement: { unit, machine, hash, desiredState: desired } }],
      await this.lead(),
    );
  }

  /** The engine unschedules a unit. */
  async unplace(unit: string, machine: string): Promise<void> {
    await this.registry.applySchedule([{ kind: 'delete', unit, machine }], await this.lead());
  }

  /** The engine says why a unit cannot be placed (or, with undefined, that it can again). */
  async unplaceable(unit: string, reason: string | undefined): Promise<void> {
    const update =
      reason === undefined
        ? { set: new Map<string, string>(), clear: [unit] }
        : { set: new Map([[unit, reason]]), clear: [] };
    await this.registry.recordUnplaceable(update, await this.lead());
  }

  /** The machine's agent reports systemd's state of a unit. */
  async report(
    unit: string,
    machine: string,
    state: { active?: string; sub?: string; load?: string; launched?: boolean; hash?: string } = {},
  ): Promise<void> {
    const presence = this.presences.get(machine);
    if (presence === undefined) throw new Error(`machine ${machine} was not announced`);
    await presence.publishUnitState(
      unitState(unit, machine, {
        activeState: state.active ?? 'active',
        subState: state.sub ?? 'running',
        loadState: state.load ?? 'loaded',
        launched: state.launched ?? true,
        hash: state.hash ?? 'ae1d7b1c0ffee0d4b1e5a6b7c8d9e0f1a2b3c4d5',
      }),
    );
  }

  /** The agent stops reporting a unit (unloaded it). */
  async unreport(unit: string, machine: string): Promise<void> {
    await this.presences.get(machine)?.removeUnitState(unit);
  }

  /** The unit's desired state in the registry. */
  async desired(unit: string): Promise<DesiredState | undefined> {
    return (await this.registry.getUnit(unit))?.desiredState;
  }

  async close(): Promise<void> {
    await this.server.close();
    await this.registry.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * A stand-in for the engine and one agent: whenever units change it places every non-global unit
 * that wants to run on `machine` and reports it as systemd would (launched: active/running;
 * loaded: inactive/dead), unschedules units that want to be inactive, and reports global units on
 * the machine too. Units in `hold` are left alone, so a test can drive them by hand; `systemd`
 * overrides the state reported for a launched unit.
 */
export class Autopilot {
  readonly hold = new Set<string>();
  readonly systemd = new Map<string, { active: string; sub: string }>();
  private running: Promise<void> = Promise.resolve();
  private closed = false;
  private subscription: { close(): Promise<void> } | undefined;

  constructor(
    private readonly h: Harness,
    private readonly machine: string,
  ) {}

  async start(): Promise<this> {
    this.subscription = await this.h.registry.watchUnits(() => {
      this.trigger();
    });
    this.trigger();
    return this;
  }

  /** Runs a reconcile after the one in flight. */
  trigger(): void {
    this.running = this.running.then(() => this.reconcile());
  }

  private async reconcile(): Promise<void> {
    if (this.closed) return;
    const { registry } = this.h;
    for (const { unit, desiredState } of await registry.listUnits()) {
      if (this.hold.has(unit.name)) continue;
      const placed = await registry.getPlacement(unit.name);
      if (desiredState === 'inactive') {
        if (placed !== undefined && !unit.fleet.global) await this.h.unplace(unit.name, placed.machine);
        await this.h.unreport(unit.name, this.machine);
        continue;
      }
      if (!unit.fleet.global && placed?.desiredState !== desiredState)
        await this.h.place(unit.name, this.machine, desiredState);
      const launched = desiredState === 'launched';
      const systemd = launched
        ? (this.systemd.get(unit.name) ?? { active: 'active', sub: 'running' })
        : { active: 'inactive', sub: 'dead' };
      await this.h.report(unit.name, this.machine, { ...systemd, launched, hash: unit.hash });
    }
  }

  async stop(): Promise<void> {
    this.closed = true;
    await this.subscription?.close();
    await this.running;
  }
}

/**
 * What the API contract runs against: an ApiServer on some registry and some transport, a client
 * for it, and helpers that put units, placements, reports and machines into the registry the way
 * the engine and agents would.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { MemoryLogger } from '../../../lib/logger.js';
import type { MachinePresence, Registry, Leadership } from '../../../registry/registry.js';
import type { MachineRecord, UnitRecord, UnitStateRecord } from '../../../registry/model.js';
import type { DesiredState } from '../../../unit/states.js';
import { ApiServer, type ApiServerOptions } from '../../../fleetd/api/server.js';
import { httpClient, type HttpClient, type HttpTarget } from '../../helpers/http.js';
import { machineRecord, unitRecord, unitState } from '../../helpers/registry-builders.js';
import type { TestPki } from '../../helpers/test-pki.js';

/** Server settings a test may change. */
export type ApiTuning = Pick<ApiServerOptions, 'tokenLimit' | 'maxBodyBytes' | 'ready'>;

/** One API under test. */
export interface ApiSubject {
  /** The registry the server uses; tests seed it directly. */
  readonly registry: Registry;
  readonly request: HttpClient;
  readonly logger: MemoryLogger;
  readonly server: ApiServer;
  readonly seed: Seeder;
  cleanup(): Promise<void>;
}

/** What each part of the contract gets. */
export interface ContractScope {
  /** The test's subject, opened with default settings before each test. */
  readonly api: ApiSubject;
  /** Opens another subject with other settings; it is closed after the test. */
  open(tuning: ApiTuning): Promise<ApiSubject>;
}

/** The body headers every PUT sends. */
export const JSON_HEADERS = { 'Content-Type': 'application/json' } as const;

/** `{"error":{"code":N,"message":"..."}}`, byte for byte. */
export function errorJson(code: number, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/** Makes a fresh, empty registry (and later releases it). */
export interface RegistrySource {
  make(): Promise<Registry>;
}

/** How the contract reaches the server. */
export type Transport = 'unix' | 'tcp' | 'tls';

/** A temp folder for sockets, removed by `cleanup`. */
export async function tempDir(prefix: string): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

let sockets = 0;

/**
 * Starts an ApiServer on a fresh registry from `source`, listening on `transport` (TLS needs
 * `pki`), and returns it with a client.
 */
export async function openSubject(
  source: RegistrySource,
  transport: Transport,
  tuning: ApiTuning = {},
  env: { readonly socketDir: string; readonly pki?: TestPki },
): Promise<ApiSubject> {
  const registry = await source.make();
  const logger = new MemoryLogger();
  const server = new ApiServer({ registry, logger, ...tuning });
  let target: HttpTarget;
  switch (transport) {
    case 'unix': {
      const socketPath = path.join(env.socketDir, `api-${++sockets}.sock`);
      await server.listenUnix(socketPath);
      target = { kind: 'unix', socketPath };
      break;
    }
    case 'tcp': {
      const { port } = await server.listenTcp({ host: '127.0.0.1', port: 0, allowPlainHttpOnLoopback: true });
      target = { kind: 'tcp', host: '127.0.0.1', port };
      break;
    }
    case 'tls': {
      const pki = env.pki;
      if (pki === undefined) throw new Error('the tls transport needs a PKI');
      const { port } = await server.listenTcp({
        host: '127.0.0.1',
        port: 0,
        tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert },
      });
      target = {
        kind: 'tls',
        host: '127.0.0.1',
        port,
        ca: pki.caCert,
        cert: pki.clientCert,
        key: pki.clientKey,
      };
      break;
    }
  }
  return {
    registry,
    logger,
    server,
    request: httpClient(target),
    seed: new Seeder(registry),
    cleanup: async () => {
      await server.close();
      await registry.close();
    },
  };
}

/** Writes what the engine and agents would write. */
export class Seeder {
  private leadership: Leadership | undefined;
  private readonly presences = new Map<string, MachinePresence>();

  constructor(private readonly registry: Registry) {}

  /** Submits a unit (built by `unitRecord`) with a desired state. */
  async unit(
    name: string,
    options: { fleet?: readonly string[]; exec?: string; desired?: DesiredState } = {},
  ): Promise<UnitRecord> {
    const record = unitRecord(name, options.fleet ?? [], options.exec);
    await this.registry.submitUnit(record, options.desired ?? 'inactive');
    return record;
  }

  private async lead(): Promise<Leadership> {
    this.leadership ??= await this.registry.campaign('api-test-engine', 10, new AbortController().signal);
    return this.leadership;
  }

  /** Places a unit on a machine, as the engine would. */
  async place(unit: UnitRecord, machine: string, desiredState: DesiredState = 'launched'): Promise<void> {
    const ok = await this.registry.applySchedule(
      [{ kind: 'put', placement: { unit: unit.name, machine, hash: unit.hash, desiredState } }],
      await this.lead(),
    );
    if (!ok) throw new Error('lost leadership while seeding');
  }

  /** Records why the engine cannot place a unit. */
  async unplaceable(unit: string, reason: string): Promise<void> {
    await this.registry.recordUnplaceable({ set: new Map([[unit, reason]]), clear: [] }, await this.lead());
  }

  /** Announces a machine (once per ID). */
  async machine(record: MachineRecord): Promise<MachinePresence> {
    const existing = this.presences.get(record.id);
    if (existing !== undefined) return existing;
    const presence = await this.registry.announceMachine(record, 30);
    this.presences.set(record.id, presence);
    return presence;
  }

  /** Publishes a unit state from a machine (announcing the machine first if needed). */
  async report(unit: string, machine: string, overrides: Partial<UnitStateRecord> = {}): Promise<void> {
    const presence = await this.machine(machineRecord(machine));
    await presence.publishUnitState(unitState(unit, machine, overrides));
  }
}

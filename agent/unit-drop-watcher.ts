import { join, resolve } from 'node:path';

import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { NO_METRICS, type MetricsHooks } from '../lib/metrics.js';
import { ReconcileLoop } from '../lib/reconcile-loop.js';
import type { UnitRecord } from '../registry/model.js';
import type { Subscription, UnitStore } from '../registry/registry.js';
import { formatProblem } from '../unit/problems.js';
import type { DesiredState } from '../unit/states.js';
import { parseUnit } from '../unit/unit.js';
import { isTemplate } from '../unit/unit-name.js';
import { DropFolder, type DropFileRead } from './unit-drop-folder.js';
import { describeOrigin, dropOrigin, planDropFile, planDropRemoval } from './unit-drop-plan.js';

/** How long a file must read the same before it counts (an editor saving in several steps). */
export const DEFAULT_DROP_STABLE_MS = 300;
/** The safety-net rescan of the folder, besides its fs.watch events. */
export const DEFAULT_DROP_RESCAN_INTERVAL_MS = 30_000;

/** The registry roles the watcher uses: units only. */
export type DropWatcherRegistry = Pick<
  UnitStore,
  'submitUnit' | 'getUnit' | 'listUnits' | 'destroyUnit' | 'watchUnits'
>;

export interface UnitDropWatcherConfig {
  /** The folder (fleetd's unit_drop_dir), an absolute path; it need not exist. */
  readonly directory: string;
  /** A file counts once two reads at least this far apart saw it the same; default 300 ms. */
  readonly stableMs?: number;
  /** Period of the safety-net rescan; default 30 s. */
  readonly rescanIntervalMs?: number;
}

export interface UnitDropWatcherDeps {
  readonly machineId: string;
  readonly registry: DropWatcherRegistry;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly config: UnitDropWatcherConfig;
  /** Told of each file handled (lib/metrics.ts); default none. */
  readonly metrics?: MetricsHooks;
}

type Parsed = { readonly ok: true; readonly record: UnitRecord } | { readonly ok: false };

/** `fleetctl start` launches a unit; a template cannot be launched, so it is only submitted. */
function desiredStateOf(name: string): DesiredState {
  return isTemplate(name) ? 'inactive' : 'launched';
}

/**
 * The unit drop folder of one machine: a unit file placed in it is submitted and started as if
 * by `fleetctl start`, an edited file replaces its unit, a removed file destroys it.
 *
 * Level-based: fs.watch events (and a periodic rescan, and a timer while a file settles) only
 * trigger a ReconcileLoop run, which re-reads the whole folder and compares it with the registry.
 *
 * - A file counts only once it is stable: the same size, modification time and contents at two
 *   reads at least `stableMs` apart, so an editor writing in several steps never submits a half
 *   file. A removal counts the same way (editors that rename the old file away first).
 * - Only names that are valid unit names count; editor and package-manager leftovers are ignored.
 *   The unit's name is the file's name.
 * - An invalid file is logged (every problem, file and line) once per content version and nothing
 *   of it is submitted; an edit that makes a submitted file invalid leaves its unit as it was.
 * - Ownership (unit-drop-plan.ts): units carry `origin = drop:<machine ID>:<path>`. A name taken by
 *   a unit from elsewhere is left alone and logged as an error; the file is tried again when that
 *   unit is gone. A unit of the folder replaced from elsewhere (`fleetctl start --replace`) is no
 *   longer the folder's. Removing a file destroys its unit only while the unit is still its own.
 * - A missing folder is an empty one, watched for from its parent; registry failures are retried
 *   with backoff by the loop.
 */
export class UnitDropWatcher {
  private readonly log: Logger;
  private readonly metrics: MetricsHooks;
  private readonly directory: string;
  private readonly stableMs: number;
  private readonly loop: ReconcileLoop;
  /** Per file: its fingerprint and since when it has read that way. */
  private readonly sightings = new Map<string, { readonly fingerprint: string; readonly since: number }>();
  /** Per managed unit whose file is gone: since when. */
  private readonly absentSince = new Map<string, number>();
  /** Per file: the digest parsed last and the outcome (problems are logged once per digest). */
  private readonly parsed = new Map<string, { readonly digest: string; readonly result: Parsed }>();
  /** Units this folder manages (their origin is their file's). */
  private readonly managed = new Set<string>();
  /** Files waiting for their name to be free: a change of units triggers a run while any wait. */
  private readonly blocked = new Set<string>();
  /** Per file: the conflict logged last, so that a conflict is logged once. */
  private readonly notes = new Map<string, string>();
  private readonly folder: DropFolder;
  private seeded = false;
  private unitsWatch: Subscription | undefined;
  private recheck: { readonly at: number; readonly controller: AbortController } | undefined;
  private closed = false;

  constructor(private readonly deps: UnitDropWatcherDeps) {
    this.metrics = deps.metrics ?? NO_METRICS;
    this.directory = resolve(deps.config.directory);
    this.stableMs = deps.config.stableMs ?? DEFAULT_DROP_STABLE_MS;
    this.log = deps.logger.child({ component: 'unit-drop-watcher', directory: this.directory });
    this.loop = new ReconcileLoop({
      name: 'unit-drop-watcher',
      reconcile: (signal) => this.reconcile(signal),
      intervalMs: deps.config.rescanIntervalMs ?? DEFAULT_DROP_RESCAN_INTERVAL_MS,
      clock: deps.clock,
      logger: this.log,
      onRunEnd: (ok) => {
        if (!ok) this.metrics.dropFolderFile('error');
      },
    });
    this.folder = new DropFolder({
      directory: this.directory,
      logger: this.log,
      onChange: () => {
        this.loop.trigger();
      },
    });
  }

  /** Starts watching; the first scan runs at once. Never throws: failures are retried. */
  start(): void {
    this.log.info('watching the unit drop folder', { stableMs: this.stableMs });
    this.loop.start();
  }

  /** How many unit files the folder holds, as of the last scan. */
  get files(): number {
    return this.sightings.size;
  }

  /** Asks for a rescan now (what an fs.watch event does). */
  rescan(): void {
    this.loop.trigger();
  }

  /** Resolves when no scan runs or is queued (a file that is settling schedules another). */
  idle(): Promise<void> {
    return this.loop.idle();
  }

  /** Stops watching; submitted units stay. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.recheck?.controller.abort();
    this.recheck = undefined;
    await this.loop.close();
    this.folder.close();
    const units = this.unitsWatch;
    this.unitsWatch = undefined;
    await units?.close();
  }

  private pathOf(name: string): string {
    return join(this.directory, name);
  }

  private originOf(name: string): string {
    return dropOrigin(this.deps.machineId, this.pathOf(name));
  }

  /** One level-based run: read the folder, settle files, then bring the registry in line. */
  private async reconcile(signal: AbortSignal): Promise<void> {
    const scan = await this.folder.scan();
    if (scan.kind === 'unreadable') return;
    const files = scan.kind === 'read' ? scan.files : new Map<string, DropFileRead | undefined>();
    const now = this.deps.clock.now();
    const due: number[] = [];
    const ready: UnitRecord[] = [];
    for (const [name, read] of files) {
      this.absentSince.delete(name);
      if (read === undefined) continue;
      const stableAt = this.observe(name, read, now);
      if (stableAt > now) {
        due.push(stableAt);
        continue;
      }
      const parsed = this.parse(name, read);
      if (parsed.ok) ready.push(parsed.record);
    }
    for (const name of [...this.sightings.keys()]) {
      if (files.has(name)) continue;
      this.sightings.delete(name);
      this.parsed.delete(name);
      this.blocked.delete(name);
      this.notes.delete(name);
    }
    // A function, so that checks after an await are not narrowed away by the type checker.
    const aborted = (): boolean => signal.aborted;
    try {
      if (aborted()) return;
      await this.followUnits();
      await this.seed();
      for (const record of ready) {
        if (aborted()) return;
        await this.syncFile(record);
      }
      for (const name of [...this.managed]) {
        if (files.has(name) || aborted()) continue;
        const since = this.absentSince.get(name) ?? now;
        this.absentSince.set(name, since);
        if (now - since < this.stableMs) {
          due.push(since + this.stableMs);
          continue;
        }
        await this.syncRemoval(name);
      }
    } finally {
      this.armRecheck(due);
    }
  }

  /** Records a read; returns when the file counts as stable (now or earlier when it is). */
  private observe(name: string, read: DropFileRead, now: number): number {
    const previous = this.sightings.get(name);
    if (previous === undefined || previous.fingerprint !== read.fingerprint || !read.settled) {
      this.sightings.set(name, { fingerprint: read.fingerprint, since: now });
      this.log.debug('unit file changed; waiting for it to settle', {
        file: this.pathOf(name),
        bytes: read.contents.length,
        stableInMs: this.stableMs,
      });
      return now + this.stableMs;
    }
    return previous.since + this.stableMs;
  }

  /** Parses a stable file once per content version, logging its problems (or warnings) then. */
  private parse(name: string, read: DropFileRead): Parsed {
    const cached = this.parsed.get(name);
    if (cached?.digest === read.digest) return cached.result;
    const file = this.pathOf(name);
    const unit = parseUnit(name, read.contents, { file });
    let result: Parsed;
    if (unit.ok) {
      for (const warning of unit.value.warnings) {
        this.log.warn('unit file warning', { file, unit: name, warning: formatProblem(warning) });
      }
      const { hash, fleet } = unit.value;
      const options = unit.value.file.options.map((o) => ({
        section: o.section,
        name: o.name,
        value: o.value,
      }));
      result = { ok: true, record: { name, hash, options, fleet, origin: this.originOf(name) } };
    } else {
      for (const problem of unit.problems) {
        this.log.error('invalid unit file in the drop folder; nothing submitted', {
          file,
          unit: name,
          problem: formatProblem(problem),
        });
      }
      result = { ok: false };
      this.metrics.dropFolderFile('invalid');
    }
    this.parsed.set(name, { digest: read.digest, result });
    return result;
  }

  /** Brings the unit of a stable, valid file in line with it (the ownership rule). */
  private async syncFile(record: UnitRecord): Promise<void> {
    const { registry } = this.deps;
    const name = record.name;
    const origin = this.originOf(name);
    const stored = await registry.getUnit(name);
    const existing = stored?.unit;
    const action = planDropFile({ origin, hash: record.hash, existing, managed: this.managed.has(name) });
    const fields = { file: this.pathOf(name), unit: name, hash: record.hash, reason: action.reason };
    const desiredState = desiredStateOf(name);
    switch (action.kind) {
      case 'none':
        this.owned(name);
        return;
      case 'create': {
        const result = await registry.submitUnit(record, desiredState);
        if (result.kind !== 'created') {
          // Another writer took the name between the read and the write: look again.
          this.loop.trigger();
          return;
        }
        this.owned(name);
        this.metrics.dropFolderFile('submitted');
        this.log.info('unit submitted from the drop folder', { ...fields, desiredState });
        return;
      }
      case 'replace': {
        const result = await registry.submitUnit(record, desiredState, { replace: true });
        if (result.kind === 'created') {
          this.owned(name);
          this.metrics.dropFolderFile('submitted');
          this.log.info('unit submitted from the drop folder', { ...fields, desiredState });
        } else if (result.kind === 'replaced') {
          this.owned(name);
          this.metrics.dropFolderFile('replaced');
          const previousHash = result.previousHash;
          if (existing !== undefined && previousHash !== existing.hash) {
            // The registry's replace is not conditional on the origin: a replace from elsewhere
            // that landed between our read and our write is overwritten. Say so loudly.
            this.log.error('unit replaced from the drop folder had just been replaced elsewhere', {
              ...fields,
              previousHash,
            });
          } else {
            this.log.info('unit replaced from the drop folder', { ...fields, previousHash, desiredState });
          }
        } else {
          this.loop.trigger();
        }
        return;
      }
      case 'release':
      case 'refuse': {
        this.managed.delete(name);
        this.blocked.add(name);
        const taken = `taken ${record.hash} ${existing?.hash ?? ''} ${existing?.origin ?? ''}`;
        if (this.notes.get(name) === taken) return;
        this.notes.set(name, taken);
        this.metrics.dropFolderFile(action.kind === 'release' ? 'released' : 'refused');
        const existingFrom = describeOrigin(existing?.origin);
        if (action.kind === 'release') {
          this.log.warn('unit taken over elsewhere; the drop folder no longer manages it', {
            ...fields,
            existing: existingFrom,
          });
        } else {
          this.log.error('unit file not submitted: a unit of that name came from elsewhere', {
            ...fields,
            existing: existingFrom,
          });
        }
        return;
      }
    }
  }

  private owned(name: string): void {
    this.managed.add(name);
    this.blocked.delete(name);
    this.notes.delete(name);
  }

  /** Destroys the unit of a file that stayed removed, if the unit is still the file's. */
  private async syncRemoval(name: string): Promise<void> {
    const stored = await this.deps.registry.getUnit(name);
    const action = planDropRemoval({ origin: this.originOf(name), existing: stored?.unit });
    const fields = { file: this.pathOf(name), unit: name, reason: action.reason };
    switch (action.kind) {
      case 'destroy':
        await this.deps.registry.destroyUnit(name);
        this.metrics.dropFolderFile('destroyed');
        this.log.info('unit destroyed: its file was removed from the drop folder', fields);
        break;
      case 'forget':
        this.log.info('unit file removed; the unit is left alone', fields);
        break;
    }
    this.managed.delete(name);
    this.absentSince.delete(name);
    this.notes.delete(name);
  }

  /** Once per start: the units this folder made before, so that files removed meanwhile count. */
  private async seed(): Promise<void> {
    if (this.seeded) return;
    const units = await this.deps.registry.listUnits();
    for (const { unit } of units) if (unit.origin === this.originOf(unit.name)) this.managed.add(unit.name);
    this.seeded = true;
    if (this.managed.size > 0) this.log.info('units of the drop folder found', { units: [...this.managed] });
  }

  /** Subscribes once to unit changes, which retry the files waiting for a free name. */
  private async followUnits(): Promise<void> {
    if (this.unitsWatch !== undefined) return;
    const subscription = await this.deps.registry.watchUnits(() => {
      if (this.blocked.size > 0) this.loop.trigger();
    });
    if (this.closed) await subscription.close();
    else this.unitsWatch = subscription;
  }

  /** Wakes the loop when the earliest settling file (or removal) is due. */
  private armRecheck(due: readonly number[]): void {
    if (due.length === 0 || this.closed) return;
    const at = Math.min(...due);
    if (this.recheck !== undefined && this.recheck.at <= at) return;
    this.recheck?.controller.abort();
    const recheck = { at, controller: new AbortController() };
    this.recheck = recheck;
    const { clock } = this.deps;
    clock.sleep(Math.max(0, at - clock.now()), recheck.controller.signal).then(
      () => {
        if (this.recheck === recheck) this.recheck = undefined;
        this.loop.trigger();
      },
      () => undefined,
    );
  }
}

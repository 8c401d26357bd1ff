import type { IKeyValue } from 'etcd3';
import { describeError, isFleetError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

/**
 * Malformed records in etcd (an empty value, bad JSON, an unknown version, an invalid unit name,
 * machine ID or IP: anything codec.ts refuses) are skipped by every reader and logged once per
 * version of the record, so one bad key, written by a broken or hostile cluster member, never
 * hides the rest of the cluster behind an error (a 500 on `GET /machines`, an engine or agent
 * that cannot run its round).
 */

/** How many corrupt record versions are remembered as logged; older ones may be logged again. */
const MAX_REMEMBERED = 10_000;

/** Decodes records, skipping and logging (once per key and revision) those that do not decode. */
export class CorruptRecords {
  /** `key @ mod_revision` of each record version already logged, oldest first. */
  private readonly logged = new Set<string>();
  private skippedCount = 0;

  constructor(private readonly logger: Logger) {}

  /** How many record reads were skipped so far (each read of a bad record counts). */
  get skipped(): number {
    return this.skippedCount;
  }

  /**
   * The decoded value of `kv`, or undefined when it is malformed (REGISTRY_CORRUPT from the
   * codec): then it is logged at warning level the first time this version of it is seen. Any
   * other error is a bug and is thrown.
   */
  decode<T>(kv: IKeyValue, decode: (key: string, text: string) => T): T | undefined {
    const key = kv.key.toString();
    try {
      return decode(key, kv.value.toString());
    } catch (err) {
      if (!isFleetError(err, 'REGISTRY_CORRUPT')) throw err;
      this.skippedCount++;
      const id = `${key} @ ${kv.mod_revision}`;
      if (!this.logged.has(id)) {
        if (this.logged.size >= MAX_REMEMBERED) {
          const oldest = this.logged.values().next().value;
          if (oldest !== undefined) this.logged.delete(oldest);
        }
        this.logged.add(id);
        this.logger.warn('malformed record in etcd skipped', {
          key,
          modRevision: kv.mod_revision,
          error: describeError(err),
        });
      }
      return undefined;
    }
  }

  /** The decoded values of `kvs`, in order, without the malformed ones. */
  decodeAll<T>(kvs: readonly IKeyValue[], decode: (key: string, text: string) => T): T[] {
    const out: T[] = [];
    for (const kv of kvs) {
      const value = this.decode(kv, decode);
      if (value !== undefined) out.push(value);
    }
    return out;
  }
}

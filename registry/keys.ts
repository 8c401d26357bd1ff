/**
 * The whole etcd key layout, in one place (docs/design.md). Every key lives under a configurable
 * prefix (default `/fleet/`). Values are versioned JSON (see codec.ts).
 *
 * | key                          | value                                  | written by | lifetime             |
 * |------------------------------|----------------------------------------|------------|----------------------|
 * | unit/<name>                  | options, hash, parsed [X-Fleet]        | API        | until destroy        |
 * | desired/<name>               | desired state                          | API        | until destroy        |
 * | global/<name>                | hash + desired state of a global unit  | API        | until destroy        |
 * | schedule/<machine>/<name>    | hash + desired state for that machine  | engine     | until unscheduled    |
 * | placement/<name>             | the machine a unit is scheduled on     | engine     | until unscheduled    |
 * | reason/<name>                | why the engine cannot place a unit     | engine     | until placeable      |
 * | machines/<machine>           | public IP, metadata, version           | agent      | agent's lease        |
 * | metadata/<machine>/<key>     | metadata set through the API           | API        | until removed        |
 * | state/<name>/<machine>       | load/active/sub state, hash, time      | agent      | agent's lease        |
 * | engine/leader                | the leading engine's machine ID        | engines    | leader's lease       |
 * | relay/<machine>/<id>         | a status or journal request            | API        | requester's lease    |
 * | relay-answer/<id>/<seq>      | one chunk of its answer                | agent      | answerer's lease     |
 * | events/<id>                  | one cluster event (time, kind, ...)    | engine, agents | an age-bucket lease; the leader trims the oldest past the count |
 * | drain/<machine>              | a drain mark: max parallel, force      | API        | until undrain        |
 * | drainprogress/<machine>      | the engine's progress on that drain    | engine     | until undrain        |
 *
 * `schedule/<machine>/` is what one agent watches (with `global/`), so a submission wakes one
 * agent, not the cluster. `placement/<name>` is the reverse index the engine writes in the same
 * transaction, so destroy and the API find a unit's machine without scanning.
 */
export class KeyLayout {
  constructor(readonly prefix: string = DEFAULT_PREFIX) {
    if (!prefix.endsWith('/')) this.prefix = `${prefix}/`;
  }

  unit(name: string): string {
    return `${this.prefix}unit/${name}`;
  }
  get units(): string {
    return `${this.prefix}unit/`;
  }
  desired(name: string): string {
    return `${this.prefix}desired/${name}`;
  }
  get desiredAll(): string {
    return `${this.prefix}desired/`;
  }
  global(name: string): string {
    return `${this.prefix}global/${name}`;
  }
  get globals(): string {
    return `${this.prefix}global/`;
  }
  schedule(machine: string, name: string): string {
    return `${this.prefix}schedule/${machine}/${name}`;
  }
  machineSchedule(machine: string): string {
    return `${this.prefix}schedule/${machine}/`;
  }
  get schedules(): string {
    return `${this.prefix}schedule/`;
  }
  placement(name: string): string {
    return `${this.prefix}placement/${name}`;
  }
  get placements(): string {
    return `${this.prefix}placement/`;
  }
  reason(name: string): string {
    return `${this.prefix}reason/${name}`;
  }
  get reasons(): string {
    return `${this.prefix}reason/`;
  }
  /** One event; ids sort by time (event-ids in etcd-events.ts). */
  event(id: string): string {
    return `${this.prefix}events/${id}`;
  }
  get events(): string {
    return `${this.prefix}events/`;
  }
  machine(id: string): string {
    return `${this.prefix}machines/${id}`;
  }
  get machines(): string {
    return `${this.prefix}machines/`;
  }
  metadata(machine: string, key: string): string {
    return `${this.prefix}metadata/${machine}/${key}`;
  }
  get metadataAll(): string {
    return `${this.prefix}metadata/`;
  }
  state(name: string, machine: string): string {
    return `${this.prefix}state/${name}/${machine}`;
  }
  unitStates(name: string): string {
    return `${this.prefix}state/${name}/`;
  }
  get states(): string {
    return `${this.prefix}state/`;
  }
  drain(machine: string): string {
    return `${this.prefix}drain/${machine}`;
  }
  get drains(): string {
    return `${this.prefix}drain/`;
  }
  drainProgress(machine: string): string {
    return `${this.prefix}drainprogress/${machine}`;
  }
  get drainProgressAll(): string {
    return `${this.prefix}drainprogress/`;
  }
  get leader(): string {
    return `${this.prefix}engine/leader`;
  }
  /** The requests addressed to one machine (what its agent watches). */
  relayRequests(machine: string): string {
    return `${this.prefix}relay/${machine}/`;
  }
  relayRequest(machine: string, id: string): string {
    return `${this.prefix}relay/${machine}/${id}`;
  }
  /** The chunks of one answer. */
  relayAnswers(id: string): string {
    return `${this.prefix}relay-answer/${id}/`;
  }
  /** Chunk `seq` of an answer (zero-padded so keys sort in order), or `alive` for the liveness key. */
  relayAnswer(id: string, seq: number | 'alive'): string {
    return `${this.prefix}relay-answer/${id}/${seq === 'alive' ? 'alive' : String(seq).padStart(9, '0')}`;
  }

  /** The last path segment of a key under `base` (a unit name or machine ID). */
  tail(key: string, base: string): string {
    return key.slice(base.length);
  }
}

export const DEFAULT_PREFIX = '/fleet/';

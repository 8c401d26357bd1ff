import { EventEmitter } from 'node:events';
import {
  GRPCCancelledError,
  GRPCDeadlineExceededError,
  RecoverableError,
  castGrpcError,
  isRecoverableError,
  type IOptions,
} from 'etcd3';
import type { Clock } from '../lib/clock.js';
import { FleetError } from '../lib/errors.js';

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type HostPolicy = ReturnType<NonNullable<FaultHandling['host']>>;
type PolicyContext = Parameters<Parameters<HostPolicy['execute']>[0]>[0];

/** Missed deadlines in a row after which a member counts as down (a frozen or cut-off member). */
const DEADLINES_UNTIL_DOWN = 3;
/** The longest a member is passed over before it gets a call again. */
const MAX_DOWN_MS = 5_000;

/**
 * Thrown by a member's policy instead of calling it: etcd3 then tries the next member. Not a
 * recoverable error, so etcd3 leaves the member's channels alone.
 */
export class MemberPassedOver extends Error {
  constructor(readonly member: string) {
    super(`etcd member ${member} passed over: it failed recently`);
    this.name = 'MemberPassedOver';
  }
}

interface MemberState {
  /** Failures in a row since the last answer. */
  failures: number;
  /** Missed deadlines in a row since the last answer. */
  deadlines: number;
  /** Passed over until then (clock ms) while another member may take the call. */
  downUntil: number;
}

/** True for a call cancelled on our side: it says nothing about the member. */
export function isCancellation(err: unknown): boolean {
  return err instanceof Error && castGrpcError(err) instanceof GRPCCancelledError;
}

/**
 * Which etcd members answer, shared by the per-member policies etcd3 runs every call through
 * (`faultHandling.host`). It replaces etcd3's default, a circuit breaker per member that opens
 * for 5 s after three recoverable failures in a row and then refuses every call, so that:
 *
 * - a member that refused a connection or failed a call is passed over for a while (1 s, doubling
 *   to 5 s while it keeps failing), so calls and new streams go to the others at once;
 * - a missed deadline does not tear down the member's channels (etcd3 closes every channel of a
 *   member, watches and lease keepalive streams included, on a recoverable error): it only says
 *   etcd is slow, which it is during a leader election, for example. Three in a row count as a
 *   failure, for a member that is frozen or cut off and so never refuses anything, and so does
 *   one from a member that was down and has not answered since;
 * - a call cancelled on our side (a keepalive that missed its own deadline, a watch stream etcd3
 *   closes) counts for nothing;
 * - when every member is down, calls go through anyway: with one member, or with all of them
 *   restarting, the first that answers again is used at once, not 5 s later;
 * - a lease keepalive stream goes to a member of our choosing ({@link pick}): one that is up,
 *   other than the one where the last keepalive went unanswered.
 */
export class MemberHealth {
  private readonly members = new Map<string, MemberState>();

  constructor(
    private readonly clock: Clock,
    /** How long a failed member is first passed over. */
    private readonly downMs: number,
    /** For the choice among equally good members ({@link pick}). */
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * The policy etcd3 runs every call to `member` (its URL, as configured) through. Policies of one
   * member share its state. A `pinned` policy (of a client of that member alone) never passes a
   * call over, but its failures count.
   */
  policy(member: string, pinned = false): HostPolicy {
    const own = this.members.get(member) ?? { failures: 0, deadlines: 0, downUntil: 0 };
    this.members.set(member, own);
    return {
      // A type-only marker the interface declares (and deprecates); it is never read.
      // eslint-disable-next-line @typescript-eslint/no-deprecated
      _altReturn: undefined as never,
      onSuccess: () => ({ dispose: () => undefined }),
      onFailure: () => ({ dispose: () => undefined }),
      execute: async <T>(fn: (context: PolicyContext) => PromiseLike<T> | T): Promise<T> => {
        if (!pinned && this.passOver(member, own, undefined)) throw new MemberPassedOver(member);
        try {
          const result = await fn({ signal: new AbortController().signal });
          // A stream is only opened here; its failures come later, through etcd3's pool.
          if (!(result instanceof EventEmitter)) this.answered(own);
          return result;
        } catch (err) {
          throw this.failed(own, err);
        }
      },
    };
  }

  /**
   * The member a new stream should go to: one that is up and not `avoid`, else one that is up,
   * else any; chosen at random among equals, so streams spread over the members.
   */
  pick(avoid?: string): string {
    const candidates = [...this.members].filter(([m, s]) => !this.passOver(m, s, avoid));
    const chosen = candidates[Math.floor(this.random() * candidates.length)];
    if (chosen === undefined) throw new FleetError('INTERNAL', 'no etcd member to pick from');
    return chosen[0];
  }

  /** A call to `member` went unanswered past our own deadline (a lease keepalive, say). */
  unanswered(member: string): void {
    const state = this.members.get(member);
    if (state !== undefined) this.deadlineMissed(state);
  }

  /** True while `member` is passed over (for tests and logs). */
  isDown(member: string): boolean {
    const state = this.members.get(member);
    return state !== undefined && state.downUntil > this.clock.now();
  }

  /**
   * True when another member is better placed to take a call: one that is up beats one that is
   * down, and one that is not avoided beats one that is. The best placed is never passed over, so
   * some call always finds out when a member answers again.
   */
  private passOver(member: string, state: MemberState, avoid: string | undefined): boolean {
    const now = this.clock.now();
    const rank = (m: string, s: MemberState): number => (s.downUntil > now ? 2 : m === avoid ? 1 : 0);
    const own = rank(member, state);
    if (own === 0) return false;
    for (const [other, s] of this.members) {
      if (other !== member && rank(other, s) < own) return true;
    }
    return false;
  }

  private answered(state: MemberState): void {
    state.failures = 0;
    state.deadlines = 0;
    state.downUntil = 0;
  }

  /** Counts a failed call; returns the error to throw. */
  private failed(state: MemberState, err: unknown): unknown {
    if (!(err instanceof Error)) return err;
    if (isCancellation(err)) return err;
    if (err instanceof GRPCDeadlineExceededError) {
      // The marker etcd3 tests with `RecoverableError in error`, an own property of the instance:
      // without it etcd3 keeps the member's channels, and does not retry a call whose deadline
      // has already passed (it would fail again at once).
      Reflect.deleteProperty(err, RecoverableError);
      this.deadlineMissed(state);
      return err;
    }
    if (isRecoverableError(err)) this.down(state);
    // Anything else is an answer (a lease not found, a bad request): the member works.
    else this.answered(state);
    return err;
  }

  private deadlineMissed(state: MemberState): void {
    state.deadlines++;
    // A member that was down and has not answered since goes down again at once.
    if (state.deadlines >= DEADLINES_UNTIL_DOWN || state.failures > 0) {
      state.deadlines = 0;
      this.down(state);
    }
  }

  private down(state: MemberState): void {
    state.failures++;
    const ms = Math.min(MAX_DOWN_MS, this.downMs * 2 ** Math.min(state.failures - 1, 8));
    state.downUntil = this.clock.now() + ms;
  }
}

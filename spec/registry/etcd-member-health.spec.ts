import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { describe, it } from 'mocha';
import {
  EtcdLeaseInvalidError,
  GRPCCancelledError,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
  isRecoverableError,
} from 'etcd3';
import { ManualClock } from '../../lib/clock.js';
import { MemberHealth, MemberPassedOver } from '../../registry/etcd-member-health.js';

const MEMBERS = ['a', 'b', 'c'] as const;
type Member = (typeof MEMBERS)[number];

/**
 * Three members' policies, and a call that goes through them as etcd3's pool does: each member
 * in the given order until one does not pass the call over.
 */
function pool(random: () => number = Math.random) {
  const clock = new ManualClock(1_000_000);
  const health = new MemberHealth(clock, 1_000, random);
  const policies = new Map(MEMBERS.map((m) => [m, health.policy(m)] as const));
  async function call<T>(fn: (member: Member) => T | Promise<T>, order: readonly Member[] = MEMBERS) {
    for (const member of order) {
      try {
        const value = await policies.get(member)!.execute(() => fn(member));
        return { member, value };
      } catch (err) {
        if (err instanceof MemberPassedOver) continue;
        throw err;
      }
    }
    throw new Error('every member passed the call over');
  }
  /** Which member a call in `order` lands on. */
  const landsOn = async (order: readonly Member[] = MEMBERS): Promise<Member> =>
    (await call(() => 'ok', order)).member;
  /** A call to `member` alone that fails with `err` (the error as the caller sees it). */
  const failOn = async (member: Member, err: Error): Promise<unknown> => {
    try {
      await call(() => {
        throw err;
      }, [member]);
    } catch (thrown) {
      return thrown;
    }
    throw new Error('expected the call to fail');
  };
  return { clock, health, call, landsOn, failOn };
}

const unavailable = (): Error => new GRPCUnavailableError('14 UNAVAILABLE: connect ECONNREFUSED');
const deadline = (): Error => new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded');

describe('registry/etcd-member-health', () => {
  it('runs a call on the first member it reaches and returns its result', async () => {
    const { call } = pool();
    expect(await call((m) => `answer of ${m}`, ['b', 'a', 'c'])).to.deep.equal({
      member: 'b',
      value: 'answer of b',
    });
  });

  it('passes a member that refused a call over for a second, then tries it again', async () => {
    const { clock, health, landsOn, failOn } = pool();
    const err = unavailable();
    expect(await failOn('a', err)).to.equal(err);
    expect(health.isDown('a')).to.equal(true);
    expect(await landsOn(['a', 'b', 'c'])).to.equal('b');
    await clock.advance(999);
    expect(await landsOn(['a', 'b', 'c'])).to.equal('b');
    await clock.advance(1);
    expect(await landsOn(['a', 'b', 'c'])).to.equal('a');
    expect(health.isDown('a')).to.equal(false);
  });

  it('passes a member that keeps failing over for longer each time, at most 5 s', async () => {
    const { clock, health, failOn } = pool();
    const downFor = async (): Promise<number> => {
      await failOn('a', unavailable());
      let ms = 0;
      while (health.isDown('a')) {
        await clock.advance(100);
        ms += 100;
      }
      return ms;
    };
    const periods = [];
    for (let i = 0; i < 5; i++) periods.push(await downFor());
    expect(periods).to.deep.equal([1_000, 2_000, 4_000, 5_000, 5_000]);
  });

  it('never passes every member over: with all of them down, the call still goes out', async () => {
    const { health, landsOn, failOn } = pool();
    for (const m of MEMBERS) await failOn(m, unavailable());
    expect(MEMBERS.map((m) => health.isDown(m))).to.deep.equal([true, true, true]);
    expect(await landsOn(['c', 'a', 'b'])).to.equal('c');
    // It answered: it is up again, and the others stay passed over.
    expect(MEMBERS.map((m) => health.isDown(m))).to.deep.equal([true, true, false]);
    expect(await landsOn(['a', 'b', 'c'])).to.equal('c');
  });

  it('does not hold a cancellation against a member', async () => {
    const { health, landsOn, failOn } = pool();
    const err = new GRPCCancelledError('1 CANCELLED: Cancelled on client');
    for (let i = 0; i < 5; i++) expect(await failOn('a', err)).to.equal(err);
    expect(health.isDown('a')).to.equal(false);
    expect(await landsOn()).to.equal('a');
  });

  it('keeps a member’s channels on a missed deadline, and passes it over after three in a row', async () => {
    const { health, landsOn, failOn } = pool();
    for (let i = 0; i < 2; i++) {
      const err = deadline();
      expect(isRecoverableError(err)).to.equal(true);
      await failOn('a', err);
      // Not recoverable any more: etcd3 then neither closes the member's channels nor retries.
      expect(isRecoverableError(err)).to.equal(false);
      expect(health.isDown('a')).to.equal(false);
    }
    await failOn('a', deadline());
    expect(health.isDown('a')).to.equal(true);
    expect(await landsOn()).to.equal('b');
  });

  it('passes a member that was down over again on its first missed deadline, until it answers', async () => {
    const { clock, health, landsOn, failOn } = pool();
    await failOn('a', unavailable());
    await clock.advance(1_000);
    expect(health.isDown('a')).to.equal(false);
    await failOn('a', deadline());
    expect(health.isDown('a')).to.equal(true);
    await clock.advance(2_000);
    expect(await landsOn()).to.equal('a');
    await failOn('a', deadline());
    expect(health.isDown('a')).to.equal(false);
  });

  it('counts an answer that is an error (a lease not found) as the member working', async () => {
    const { health, failOn } = pool();
    await failOn('a', deadline());
    await failOn('a', deadline());
    await failOn('a', new EtcdLeaseInvalidError('123'));
    await failOn('a', deadline());
    expect(health.isDown('a')).to.equal(false);
  });

  it('does not take an opened stream for an answer', async () => {
    const { health, call, failOn } = pool();
    await failOn('a', unavailable());
    await failOn('b', unavailable());
    await failOn('c', unavailable());
    // All down: the stream is opened on the first, which stays down until it really answers.
    const { member } = await call(() => new EventEmitter(), ['a', 'b', 'c']);
    expect(member).to.equal('a');
    expect(health.isDown('a')).to.equal(true);
  });

  describe('picking a member for a stream', () => {
    it('picks a member that is up, other than the one to avoid, at random among them', () => {
      let next = 0;
      const { health } = pool(() => next);
      const pickWith = (random: number, avoid?: string): string => {
        next = random;
        return health.pick(avoid);
      };
      expect([0, 0.3, 0.6, 0.99].map((r) => pickWith(r, 'a'))).to.deep.equal(['b', 'b', 'c', 'c']);
      expect([0, 0.4, 0.99].map((r) => pickWith(r))).to.deep.equal(['a', 'b', 'c']);
    });

    it('picks the avoided member when every other one is down', async () => {
      const { health, failOn } = pool();
      await failOn('b', unavailable());
      await failOn('c', unavailable());
      expect(health.pick('a')).to.equal('a');
    });

    it('prefers an avoided member that is up to one that is down, and any member to none', async () => {
      const { health, failOn } = pool();
      await failOn('b', unavailable());
      expect(health.pick('c')).to.equal('a');
      await failOn('a', unavailable());
      expect(health.pick('c')).to.equal('c');
      await failOn('c', unavailable());
      expect(MEMBERS).to.include(health.pick('c'));
    });
  });

  it('shares a member’s state between its policies; a pinned one never passes it over', async () => {
    const { health, failOn } = pool();
    const pinned = health.policy('a', true);
    await failOn('a', unavailable());
    expect(await pinned.execute(() => 'answered')).to.equal('answered');
    expect(health.isDown('a')).to.equal(false);
    await pinned
      .execute(() => {
        throw unavailable();
      })
      .catch(() => undefined);
    expect(health.isDown('a')).to.equal(true);
  });

  it('passes a member over after three keepalives went unanswered there', async () => {
    const { health, landsOn } = pool();
    health.unanswered('a');
    health.unanswered('a');
    expect(health.isDown('a')).to.equal(false);
    health.unanswered('a');
    expect(health.isDown('a')).to.equal(true);
    expect(await landsOn()).to.equal('b');
    // An unknown member is ignored.
    health.unanswered('z');
  });
});

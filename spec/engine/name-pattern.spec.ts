import { expect } from 'chai';
import { describe, it } from 'mocha';
import { LoadOrder } from '../../engine/load-order.js';
import { compileNamePattern } from '../../engine/name-pattern.js';
import { PatternTable } from '../../engine/pattern-table.js';
import { globMatches } from '../../unit/glob.js';
import { Random } from '../helpers/random.js';

describe('engine/name-pattern', () => {
  const cases: readonly [string, string, boolean][] = [
    ['web.service', 'web.service', true],
    ['web.service', 'web.servic', false],
    ['web@*.service', 'web@1.service', true],
    ['web@*.service', 'web@.service', true],
    ['web@*.service', 'web@a/b.service', false],
    ['web@*.service', 'web.service', false],
    ['*', 'a/b', false],
    ['*', '', true],
    ['a*a', 'a', false],
    ['a*a', 'aa', true],
    ['db-?.service', 'db-1.service', true],
    ['[bad', '[bad', false],
    ['a\\*b', 'a*b', true],
  ];
  for (const [pattern, name, expected] of cases) {
    it(`${expected ? 'matches' : 'does not match'} ${JSON.stringify(name)} with ${JSON.stringify(pattern)}`, () => {
      expect(compileNamePattern(pattern).matches(name)).to.equal(expected);
    });
  }

  it('answers exactly as globMatches on random patterns and names', () => {
    const rnd = new Random(4242);
    const alphabet = 'ab@.-/*?[]\\^';
    for (let i = 0; i < 20_000; i++) {
      const pattern = rnd.string(alphabet, rnd.int(0, 6));
      const name = rnd.string('ab@.-/*', rnd.int(0, 6));
      expect(compileNamePattern(pattern).matches(name), `${pattern} ${name}`).to.equal(
        globMatches(pattern, name),
      );
    }
  });

  it('marks only patterns without glob syntax as literal', () => {
    expect(compileNamePattern('a.service').literal).to.equal('a.service');
    expect(compileNamePattern('a*.service').literal).to.equal(undefined);
    expect(compileNamePattern('a\\.service').literal).to.equal(undefined);
  });
});

describe('engine/pattern-table', () => {
  it('interns each pattern once and finds every pattern matching a name', () => {
    const table = new PatternTable();
    const web = table.intern('web@*.service');
    const exact = table.intern('web@1.service');
    expect(table.intern('web@*.service')).to.equal(web);
    expect(table.idsMatching('web@1.service').sort()).to.deep.equal([web, exact].sort());
    expect(table.idsMatching('web@2.service')).to.deep.equal([web]);
    expect(table.idsMatching('db.service')).to.deep.equal([]);
  });

  it('keeps per-machine counters that return to zero', () => {
    const table = new PatternTable();
    const id = table.intern('x*');
    table.addHolder(id, 3, 1);
    table.addMatch(id, 3, 2);
    expect([table.heldOn(id, 3), table.matchedOn(id, 3), table.heldOn(id, 4)]).to.deep.equal([1, 2, 0]);
    table.addMatch(id, 3, -2);
    expect(table.matchedOn(id, 3)).to.equal(0);
  });
});

describe('engine/load-order', () => {
  function order(lo: LoadOrder, size: number): number[] {
    const out: number[] = [];
    lo.find((r) => {
      out.push(r);
      return out.length === size;
    });
    return out;
  }

  it('orders machines by load, then by rank', () => {
    const lo = new LoadOrder(4);
    lo.add(0, 2);
    lo.add(1, 1);
    lo.add(3, 1);
    expect(order(lo, 4)).to.deep.equal([2, 1, 3, 0]);
    lo.add(0, -2);
    expect(order(lo, 4)).to.deep.equal([0, 2, 1, 3]);
    expect(lo.load(1)).to.equal(1);
  });

  it('finds the first machine accepted and -1 when none is', () => {
    const lo = new LoadOrder(3);
    lo.add(0, 1);
    expect(lo.find((r) => r !== 1)).to.equal(2);
    expect(lo.find(() => false)).to.equal(-1);
    expect(new LoadOrder(0).find(() => true)).to.equal(-1);
  });

  it('agrees with sorting after random load changes', () => {
    const rnd = new Random(7);
    const size = 20;
    const lo = new LoadOrder(size);
    const loads = new Array<number>(size).fill(0);
    for (let i = 0; i < 2000; i++) {
      const rank = rnd.int(0, size - 1);
      const delta = (loads[rank] ?? 0) > 0 && rnd.bool(0.4) ? -1 : 1;
      loads[rank] = (loads[rank] ?? 0) + delta;
      lo.add(rank, delta);
    }
    const expected = loads
      .map((load, rank) => ({ load, rank }))
      .sort((a, b) => a.load - b.load || a.rank - b.rank);
    expect(order(lo, size)).to.deep.equal(expected.map((e) => e.rank));
  });
});

import { expect } from 'chai';
import { describe, it } from 'mocha';
import { globMatches, isValidGlob, matchGlob, type GlobMatch } from '../../unit/glob.js';

describe('unit/glob', () => {
  describe('matchGlob against Go path.Match tests', () => {
    // Go's src/path/match_test.go matchTests (Go 1.16+), one row each: pattern, name, outcome.
    const goTable: readonly [string, string, GlobMatch][] = [
      ['abc', 'abc', 'match'],
      ['*', 'abc', 'match'],
      ['*c', 'abc', 'match'],
      ['a*', 'a', 'match'],
      ['a*', 'abc', 'match'],
      ['a*', 'ab/c', 'no-match'],
      ['a*/b', 'abc/b', 'match'],
      ['a*/b', 'a/c/b', 'no-match'],
      ['a*b*c*d*e*/f', 'axbxcxdxe/f', 'match'],
      ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', 'match'],
      ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', 'no-match'],
      ['a*b*c*d*e*/f', 'axbxcxdxexxx/fff', 'no-match'],
      ['a*b?c*x', 'abxbbxdbxebxczzx', 'match'],
      ['a*b?c*x', 'abxbbxdbxebxczzy', 'no-match'],
      ['ab[c]', 'abc', 'match'],
      ['ab[b-d]', 'abc', 'match'],
      ['ab[e-g]', 'abc', 'no-match'],
      ['ab[^c]', 'abc', 'no-match'],
      ['ab[^b-d]', 'abc', 'no-match'],
      ['ab[^e-g]', 'abc', 'match'],
      ['a\\*b', 'a*b', 'match'],
      ['a\\*b', 'ab', 'no-match'],
      ['a?b', 'a☺b', 'match'],
      ['a[^a]b', 'a☺b', 'match'],
      ['a???b', 'a☺b', 'no-match'],
      ['a[^a][^a][^a]b', 'a☺b', 'no-match'],
      ['[a-ζ]*', 'α', 'match'],
      ['*[a-ζ]', 'A', 'no-match'],
      ['a?b', 'a/b', 'no-match'],
      ['a*b', 'a/b', 'no-match'],
      ['[\\]a]', ']', 'match'],
      ['[\\-]', '-', 'match'],
      ['[x\\-]', 'x', 'match'],
      ['[x\\-]', '-', 'match'],
      ['[x\\-]', 'z', 'no-match'],
      ['[\\-x]', 'x', 'match'],
      ['[\\-x]', '-', 'match'],
      ['[\\-x]', 'a', 'no-match'],
      ['[]a]', ']', 'bad-pattern'],
      ['[-]', '-', 'bad-pattern'],
      ['[x-]', 'x', 'bad-pattern'],
      ['[x-]', '-', 'bad-pattern'],
      ['[x-]', 'z', 'bad-pattern'],
      ['[-x]', 'x', 'bad-pattern'],
      ['[-x]', '-', 'bad-pattern'],
      ['[-x]', 'a', 'bad-pattern'],
      ['\\', 'a', 'bad-pattern'],
      ['[a-b-c]', 'a', 'bad-pattern'],
      ['[', 'a', 'bad-pattern'],
      ['[^', 'a', 'bad-pattern'],
      ['[^bc', 'a', 'bad-pattern'],
      ['a[', 'a', 'bad-pattern'],
      ['a[', 'ab', 'bad-pattern'],
      ['a[', 'x', 'bad-pattern'],
      ['a/b[', 'x', 'bad-pattern'],
      ['*x', 'xxx', 'match'],
    ];
    for (const [pattern, name, outcome] of goTable) {
      it(`gives ${outcome} for ${JSON.stringify(pattern)} on ${JSON.stringify(name)}`, () => {
        expect(matchGlob(pattern, name)).to.equal(outcome);
      });
    }
  });

  describe('matchGlob beyond the Go table', () => {
    const extra: readonly { title: string; pattern: string; name: string; outcome: GlobMatch }[] = [
      { title: 'the empty pattern matches only the empty name', pattern: '', name: '', outcome: 'match' },
      { title: 'the empty pattern rejects a name', pattern: '', name: 'a', outcome: 'no-match' },
      { title: 'a lone star matches the empty name', pattern: '*', name: '', outcome: 'match' },
      { title: 'consecutive stars act as one', pattern: 'a**c', name: 'abbc', outcome: 'match' },
      { title: 'a star inside a class is literal', pattern: '[*]', name: '*', outcome: 'match' },
      {
        title: 'an escaped star in a chunk does not split it',
        pattern: 'x*\\*',
        name: 'xab*',
        outcome: 'match',
      },
      {
        title: 'a unit-name conflict glob matches',
        pattern: 'web@*.service',
        name: 'web@1.service',
        outcome: 'match',
      },
      {
        title: 'a unit-name conflict glob rejects another type',
        pattern: 'web@*.service',
        name: 'web@1.socket',
        outcome: 'no-match',
      },
      {
        title: 'a class range covers its ends',
        pattern: 'db-[0-9].service',
        name: 'db-9.service',
        outcome: 'match',
      },
      {
        title: 'a bad class after a mismatch is still bad',
        pattern: 'x[',
        name: 'y',
        outcome: 'bad-pattern',
      },
      { title: 'a bad chunk after a star is bad', pattern: 'a*[z-', name: 'abc', outcome: 'bad-pattern' },
      {
        title: 'a trailing backslash after a mismatch is bad',
        pattern: 'b\\',
        name: 'a',
        outcome: 'bad-pattern',
      },
      {
        title: 'an escaped character in a class range works',
        pattern: '[\\a-\\c]',
        name: 'b',
        outcome: 'match',
      },
      {
        title: 'a negated class rejects a slash-free match',
        pattern: '[^/]',
        name: '/',
        outcome: 'no-match',
      },
      // Go skips bytes, not runes, for '*': from the middle of '€' (3 bytes) two invalid runes remain.
      {
        title: 'a star may land inside a multi-byte character, as in Go',
        pattern: '*??',
        name: '€',
        outcome: 'match',
      },
      { title: 'a question mark takes a whole character', pattern: '??', name: '€', outcome: 'no-match' },
    ];
    for (const { title, pattern, name, outcome } of extra) {
      it(`says ${title}`, () => {
        expect(matchGlob(pattern, name)).to.equal(outcome);
      });
    }

    it('runs in polynomial time on patterns that make backtracking matchers explode', () => {
      const started = process.hrtime.bigint();
      expect(matchGlob(`${'a*'.repeat(40)}b`, 'a'.repeat(5000))).to.equal('no-match');
      const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
      expect(elapsedMs).to.be.below(2000);
    });
  });

  describe('globMatches', () => {
    it('is true for a match', () => {
      expect(globMatches('foo*', 'foo.service')).to.equal(true);
    });

    it('is false for a bad pattern, as fleet treats it', () => {
      expect(globMatches('[', '[')).to.equal(false);
    });
  });

  describe('isValidGlob', () => {
    const cases: readonly [string, boolean][] = [
      ['', true],
      ['*', true],
      ['foo@*.service', true],
      ['[a-z]?\\*', true],
      ['[', false],
      ['[]', false],
      ['[a-]', false],
      ['foo\\', false],
      ['ok*[^', false],
    ];
    for (const [pattern, valid] of cases) {
      it(`${valid ? 'accepts' : 'rejects'} ${JSON.stringify(pattern)}`, () => {
        expect(isValidGlob(pattern)).to.equal(valid);
      });
    }
  });
});

import { expect } from 'chai';
import { describe, it } from 'mocha';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { FleetOptions } from '../../unit/fleet-options.js';
import { formatProblem } from '../../unit/problems.js';
import { serializeUnitFile } from '../../unit/serialize.js';
import { parseUnit } from '../../unit/unit.js';
import { repoRoot } from '../../systemd-fixtures/repo-root.js';

/**
 * The unit-file fixtures under systemd-fixtures/units, checked one `it` per file.
 *
 * - `valid/<name>`: a unit named after its file, which must parse. Beside it, `<name>.expect.json`
 *   holds its hash, its canonical form, its [X-Fleet] options and its warnings (formatted lines).
 * - `invalid/<name>`: a unit named after its file, which must be rejected. Beside it,
 *   `<name>.expected` holds every problem `formatProblem` renders, one per line, in order.
 *
 * A fixture without its expectation file fails, and so does an expectation file without its fixture.
 * The fixtures are read from the source tree (tests run compiled, from dist/spec/unit/).
 */

const VALID_SUFFIX = '.expect.json';
const INVALID_SUFFIX = '.expected';

const FIXTURES = join(repoRoot(), 'systemd-fixtures', 'units');

interface FixtureDir {
  readonly fixtures: readonly string[];
  /** Expectation files whose fixture does not exist. */
  readonly orphans: readonly string[];
}

function listFixtures(dir: string, suffix: string): FixtureDir {
  const names = readdirSync(join(FIXTURES, dir)).sort();
  const fixtures = names.filter((n) => !n.endsWith(suffix));
  const orphans = names
    .filter((n) => n.endsWith(suffix))
    .filter((n) => !fixtures.includes(n.slice(0, -suffix.length)));
  return { fixtures, orphans };
}

/** The contents of a fixture's expectation file; fails the test when there is none. */
function readExpectation(dir: string, fixture: string, suffix: string): string {
  const path = join(FIXTURES, dir, fixture + suffix);
  if (!existsSync(path)) expect.fail(`${dir}/${fixture} has no expectation file ${dir}/${fixture}${suffix}`);
  return readFileSync(path, 'utf8');
}

interface ValidExpectation {
  readonly hash: string;
  readonly canonical: string;
  readonly fleet: FleetOptions;
  readonly warnings: readonly string[];
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Parses an `.expect.json`, insisting on every field so that no check is silently skipped. */
function parseValidExpectation(text: string, path: string): ValidExpectation {
  const json: unknown = JSON.parse(text);
  if (!isRecord(json)) throw new Error(`${path}: expected a JSON object`);
  const { hash, canonical, fleet, warnings } = json;
  if (typeof hash !== 'string' || !/^[0-9a-f]{40}$/.test(hash))
    throw new Error(`${path}: "hash" must be 40 lowercase hex digits`);
  if (typeof canonical !== 'string') throw new Error(`${path}: "canonical" must be a string`);
  if (!isRecord(fleet)) throw new Error(`${path}: "fleet" must be an object (FleetOptions)`);
  const lines: unknown[] = Array.isArray(warnings) ? warnings : [];
  const strings = lines.filter((w): w is string => typeof w === 'string');
  if (!Array.isArray(warnings) || strings.length !== lines.length)
    throw new Error(`${path}: "warnings" must be an array of strings`);
  // The shape of `fleet` is checked by the deep equality it is used in.
  return { hash, canonical, fleet: fleet as unknown as FleetOptions, warnings: strings };
}

/** The lines of an `.expected` file: one problem per line, each ended by a newline. */
function expectedLines(text: string, path: string): string[] {
  if (text === '') throw new Error(`${path} is empty: an invalid fixture needs at least one problem`);
  if (!text.endsWith('\n')) throw new Error(`${path} must end with a newline`);
  return text.slice(0, -1).split('\n');
}

describe('systemd-fixtures/units', () => {
  const valid = listFixtures('valid', VALID_SUFFIX);
  const invalid = listFixtures('invalid', INVALID_SUFFIX);

  it('finds the fixture directories in the source tree', () => {
    expect(valid.fixtures.length, `valid fixtures in ${FIXTURES}`).to.be.greaterThan(0);
    expect(invalid.fixtures.length, `invalid fixtures in ${FIXTURES}`).to.be.greaterThan(0);
  });

  it('has a fixture beside every expectation file', () => {
    const orphans = [
      ...valid.orphans.map((n) => `valid/${n}`),
      ...invalid.orphans.map((n) => `invalid/${n}`),
    ];
    expect(orphans, 'expectation files without a fixture').to.deep.equal([]);
  });

  describe('valid', () => {
    for (const name of valid.fixtures) {
      it(`accepts ${name} with the expected hash, canonical form, options and warnings`, () => {
        const file = `valid/${name}`;
        const want = parseValidExpectation(readExpectation('valid', name, VALID_SUFFIX), file + VALID_SUFFIX);
        const r = parseUnit(name, readFileSync(join(FIXTURES, file)), { file });
        if (!r.ok) expect.fail(`${file} is rejected:\n${r.problems.map(formatProblem).join('\n')}`);
        const unit = r.value;
        expect(unit.name).to.equal(name);
        expect(serializeUnitFile(unit.file), 'canonical form').to.equal(want.canonical);
        expect(unit.hash, 'hash').to.equal(want.hash);
        expect(unit.fleet, '[X-Fleet] options').to.deep.equal(want.fleet);
        expect(unit.warnings.map(formatProblem), 'warnings').to.deep.equal(want.warnings);
      });
    }
  });

  describe('invalid', () => {
    for (const name of invalid.fixtures) {
      it(`rejects ${name} with exactly the problems in ${name}${INVALID_SUFFIX}`, () => {
        const file = `invalid/${name}`;
        const want = expectedLines(readExpectation('invalid', name, INVALID_SUFFIX), file + INVALID_SUFFIX);
        const r = parseUnit(name, readFileSync(join(FIXTURES, file)), { file });
        if (r.ok) expect.fail(`${file} is accepted; expected:\n${want.join('\n')}`);
        expect(r.problems.map(formatProblem)).to.deep.equal(want);
      });
    }
  });
});

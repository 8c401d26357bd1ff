import { describe, it } from 'mocha';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { isValidGlob } from '../../unit/glob.js';
import { FLEET_OPTION_NAMES, validateFleetOptions, type FleetOptions } from '../../unit/fleet-options.js';
import { formatProblem, type UnitProblem } from '../../unit/problems.js';
import { serializeUnitFile } from '../../unit/serialize.js';
import { parseUnitFile } from '../../unit/unit-file.js';
import { isTemplate, validateUnitName } from '../../unit/unit-name.js';
import { parseUnit, type Unit } from '../../unit/unit.js';
import { Random } from '../helpers/random.js';
import { repoRoot } from '../../systemd-fixtures/repo-root.js';

/**
 * Fuzzing the unit parser: over 100,000 seeded inputs (random bytes, mutated fixture files, random
 * structured unit files), each of which must
 * - never make `parseUnit` or `parseUnitFile` throw;
 * - parse within HANG_MS (a guard against catastrophic cases, not a benchmark);
 * - when accepted, re-parse from its canonical form to the same hash and [X-Fleet] options, and hold
 *   nothing `validateFleetOptions` (or the value rules of [X-Fleet]) would reject;
 * - when rejected, give problems that name the file, say something, and format.
 * Further tests feed large adversarial files, each at two sizes, and ask for time about linear in
 * the size: the larger input may take at most MAX_RATIO times as long as one SCALE times smaller.
 * Comparing two runs, rather than one run with a clock bound, keeps them stable on a busy machine.
 *
 * Every failure names the seed, the generator and the case, and prints the input. Set FUZZ_SEED to
 * explore other seeds; the default is fixed so the suite is reproducible.
 */

const SEED = process.env['FUZZ_SEED'] === undefined ? 20261125 : Number(process.env['FUZZ_SEED']);
if (!Number.isSafeInteger(SEED))
  throw new Error(`FUZZ_SEED must be an integer, got ${String(process.env['FUZZ_SEED'])}`);

/** Per-input time bound for small inputs (a few KiB at most). */
const HANG_MS = 50;

/** How much larger the large input of a scaling test is than the small one. */
const SCALE = 8;
/** The most the large input may take, relative to the small one: linear is SCALE, quadratic SCALE². */
const MAX_RATIO = 3 * SCALE;
/** Times below this are noise; the small input counts as taking at least this long. */
const FLOOR_MS = 5;

/** The hang guard for a large input: a very generous linear allowance (0.5 MB/s) over HANG_MS. */
function largeBoundMs(bytes: number): number {
  return 2 * HANG_MS + (2 * bytes) / 1024;
}

const DISPLAY_PREFIX = 'fuzz/';
const utf8 = new TextEncoder();

interface FixtureFile {
  readonly name: string;
  readonly bytes: Uint8Array;
}

/** Every unit file under systemd-fixtures/units (not the expectation files), as mutation seeds. */
function loadFixtures(): FixtureFile[] {
  const root = join(repoRoot(), 'systemd-fixtures', 'units');
  const seeds: FixtureFile[] = [];
  for (const dir of ['valid', 'invalid']) {
    for (const name of readdirSync(join(root, dir)).sort()) {
      if (name.endsWith('.expect.json') || name.endsWith('.expected')) continue;
      seeds.push({ name, bytes: new Uint8Array(readFileSync(join(root, dir, name))) });
    }
  }
  return seeds;
}

type Input = string | Uint8Array;

function inputLength(input: Input): number {
  return typeof input === 'string' ? utf8.encode(input).length : input.length;
}

/** The input, printable: its text (JSON-quoted, invalid UTF-8 as U+FFFD) and, for bytes, base64. */
function show(input: Input): string {
  const text = typeof input === 'string' ? input : new TextDecoder().decode(input);
  const quoted = JSON.stringify(text.length > 1000 ? `${text.slice(0, 1000)}…` : text);
  if (typeof input === 'string') return `input (string, ${text.length} UTF-16 units): ${quoted}`;
  const b64 = input.length > 3000 ? '(too long to print)' : Buffer.from(input).toString('base64');
  return `input (${input.length} bytes): ${quoted}\ninput (base64): ${b64}`;
}

/** Counts and the slowest input of one fuzz run. */
class Run {
  inputs = 0;
  accepted = 0;
  slowestMs = 0;
  slowestCase = '';

  constructor(readonly generator: string) {}

  fail(index: number, name: string, message: string, input: Input): never {
    throw new Error(
      `fuzz seed ${SEED}, ${this.generator} #${index}, unit name ${JSON.stringify(name)}: ${message}\n${show(input)}`,
    );
  }
}

function sameOptions(a: FleetOptions, b: FleetOptions): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The value rules of [X-Fleet] an accepted unit must satisfy (specifiers aside, for templates). */
function valueRuleBreaks(unit: Unit): string | undefined {
  if (isTemplate(unit.name)) return undefined;
  const f = unit.fleet;
  for (const peer of f.machineOf) {
    const bad = validateUnitName(peer);
    if (bad !== undefined) return `accepted MachineOf ${JSON.stringify(peer)}: ${bad}`;
    if (peer === unit.name) return 'accepted the unit as its own MachineOf peer';
  }
  for (const g of [...f.conflicts, ...f.replaces]) {
    if (!isValidGlob(g)) return `accepted the invalid glob ${JSON.stringify(g)}`;
  }
  for (const m of f.machineMetadata) {
    if (m.key === '' || m.values.length === 0 || m.values.some((v) => v === ''))
      return `accepted empty metadata ${JSON.stringify(m)}`;
  }
  if (f.machineId === '') return 'accepted an empty MachineID';
  return undefined;
}

function problemBreaks(problems: readonly UnitProblem[], display: string): string | undefined {
  if (problems.length === 0) return 'rejected with no problems';
  for (const p of problems) {
    if (p.file !== display) return `problem names file ${JSON.stringify(p.file)}, not ${display}`;
    if (typeof p.message !== 'string' || p.message === '')
      return `problem without a message: ${JSON.stringify(p)}`;
    if (p.line !== undefined && !(Number.isInteger(p.line) && p.line > 0))
      return `problem with line ${String(p.line)}`;
    const text = formatProblem(p);
    if (!text.startsWith(display)) return `formatted problem does not start with the file: ${text}`;
  }
  return undefined;
}

/** Parses the input both ways and times it; the time is the best of up to three runs when slow. */
function timedParse(
  run: Run,
  index: number,
  name: string,
  input: Input,
  display: string,
  boundMs: number,
): { unit: ReturnType<typeof parseUnit>; fileOk: boolean; ms: number } {
  let best = Infinity;
  let unit: ReturnType<typeof parseUnit> | undefined;
  let fileOk = false;
  for (let attempt = 0; attempt < 3; attempt++) {
    const start = performance.now();
    try {
      unit = parseUnit(name, input, { file: display });
      fileOk = parseUnitFile(input, display).ok;
    } catch (e) {
      run.fail(index, name, `threw ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`, input);
    }
    best = Math.min(best, performance.now() - start);
    // Re-time only what may be noise (a GC pause, the scheduler), not what is clearly slow.
    if (best <= boundMs || best > 3 * boundMs) break;
  }
  if (unit === undefined) return run.fail(index, name, 'no result', input);
  return { unit, fileOk, ms: best };
}

/** Runs every check on one input; returns the parse time in milliseconds. */
function check(run: Run, index: number, name: string, input: Input, boundMs = HANG_MS): number {
  run.inputs++;
  const display = DISPLAY_PREFIX + name;
  const { unit: r, fileOk, ms } = timedParse(run, index, name, input, display, boundMs);
  if (ms > run.slowestMs) {
    run.slowestMs = ms;
    run.slowestCase = `#${index} (${inputLength(input)} bytes, unit ${JSON.stringify(name)})`;
  }
  if (ms > boundMs)
    run.fail(index, name, `took ${ms.toFixed(1)} ms, over the ${boundMs.toFixed(1)} ms bound`, input);

  if (!r.ok) {
    const bad = problemBreaks(r.problems, display);
    if (bad !== undefined) run.fail(index, name, bad, input);
    return ms;
  }
  run.accepted++;
  const unit = r.value;
  if (!fileOk) run.fail(index, name, 'parseUnit accepts what parseUnitFile rejects', input);
  const invalidTogether = validateFleetOptions(unit.fleet, display);
  if (invalidTogether.length > 0)
    run.fail(
      index,
      name,
      `accepted options the validator rejects: ${invalidTogether.map(formatProblem).join('; ')}`,
      input,
    );
  const ruleBreak = valueRuleBreaks(unit);
  if (ruleBreak !== undefined) run.fail(index, name, ruleBreak, input);

  const canonical = serializeUnitFile(unit.file);
  const again = parseUnit(name, canonical, { file: display });
  if (!again.ok) {
    run.fail(
      index,
      name,
      `the canonical form does not re-parse: ${again.problems.map(formatProblem).join('; ')}\ncanonical: ${JSON.stringify(canonical)}`,
      input,
    );
  }
  if (again.value.hash !== unit.hash || serializeUnitFile(again.value.file) !== canonical)
    run.fail(index, name, `the canonical form re-parses differently: ${JSON.stringify(canonical)}`, input);
  if (!sameOptions(again.value.fleet, unit.fleet)) {
    run.fail(
      index,
      name,
      `the canonical form re-parses to other options: ${JSON.stringify(unit.fleet)} then ${JSON.stringify(again.value.fleet)}`,
      input,
    );
  }
  return ms;
}

/** Checks that a valid UTF-8 input gives the same outcome as bytes and as text. */
function checkBytesMatchText(run: Run, index: number, name: string, bytes: Uint8Array, text: string): void {
  const a = parseUnit(name, bytes);
  const b = parseUnit(name, text);
  const outcome = (r: typeof a): string =>
    r.ok ? `ok ${r.value.hash} ${JSON.stringify(r.value.fleet)}` : r.problems.map(formatProblem).join('\n');
  if (outcome(a) !== outcome(b))
    run.fail(index, name, `bytes and text differ:\n${outcome(a)}\nversus\n${outcome(b)}`, bytes);
}

// ---- generators ---------------------------------------------------------------------------------

const VALID_NAMES = [
  'fuzz.service',
  'web@.service',
  'web@1.service',
  'db.service',
  'echo.socket',
  'x@y@z.timer',
  'data.mount',
  'a.b.path',
  'app.target',
  'hello:world.service',
];
const INVALID_NAMES = ['bad%.service', 'noext', '@x.service', 'foo@1.mount', '', 'x.servICE'];

function pickName(rng: Random): string {
  return rng.bool(0.9) ? rng.pick(VALID_NAMES) : rng.pick(INVALID_NAMES);
}

/** Characters that steer the parser: structure, whitespace, quoting, specifiers, odd bytes. */
const SYNTAX_BYTES: readonly number[] = [...utf8.encode('[]=\\\n\r\t #;"%inNp@.*?-_:/aAzZ09XFleet')];

function randomBytes(rng: Random): Uint8Array {
  const length = rng.bool(0.9) ? rng.int(0, 200) : rng.int(200, 4096);
  if (rng.bool(0.3)) return rng.bytes(length);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = rng.bool(0.05) ? rng.int(0, 255) : rng.pick(SYNTAX_BYTES);
  return out;
}

const TOKENS: readonly Uint8Array[] = [
  '\\\n',
  '\\',
  '\\\r\n',
  '[',
  ']',
  '=',
  '"',
  '%i',
  '%n',
  '%N',
  '%p',
  '%%',
  '%',
  '\r',
  '\r\n',
  '\n',
  '\0',
  '#',
  ';',
  ' ',
  '\t',
  '*',
  '?',
  '@',
  '.service',
  '[X-Fleet]\n',
  '\n[X-Fleet]\n',
  'Global=true\n',
  'MachineOf=',
  'Conflicts=*',
  'Replaces=',
  'MachineID=',
  'MachineMetadata=',
  '\uFEFF',
  'é',
  '🚀',
].map((t) => utf8.encode(t));
const RAW_TOKENS: readonly Uint8Array[] = [
  [0xff],
  [0xfe],
  [0xc0, 0xaf],
  [0xe2, 0x82],
  [0xed, 0xa0, 0x80],
  [0xef, 0xbb, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
].map((b) => new Uint8Array(b));

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function splitLines(b: Uint8Array): Uint8Array[] {
  const lines: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x0a) {
      lines.push(b.subarray(start, i + 1));
      start = i + 1;
    }
  }
  if (start < b.length) lines.push(b.subarray(start));
  return lines;
}

function mutate(rng: Random, input: Uint8Array): Uint8Array {
  let b = input;
  const at = (): number => rng.int(0, b.length);
  switch (rng.int(0, 9)) {
    case 0: {
      // Flip one bit, or replace a byte.
      if (b.length === 0) return b;
      const c = new Uint8Array(b);
      const i = rng.int(0, c.length - 1);
      c[i] = rng.bool() ? (c[i] ?? 0) ^ (1 << rng.int(0, 7)) : rng.int(0, 255);
      return c;
    }
    case 1:
    case 2: {
      const token = rng.bool(0.8) ? rng.pick(TOKENS) : rng.pick(RAW_TOKENS);
      const i = at();
      return concat(b.subarray(0, i), token, b.subarray(i));
    }
    case 3: {
      const i = at();
      const j = Math.min(b.length, i + rng.int(1, 20));
      return concat(b.subarray(0, i), b.subarray(j));
    }
    case 4: {
      // Duplicate a range in place.
      const i = at();
      const j = Math.min(b.length, i + rng.int(1, 40));
      return concat(b.subarray(0, j), b.subarray(i, j), b.subarray(j));
    }
    case 5:
      return b.subarray(0, at());
    case 6: {
      const lines = splitLines(b);
      for (let k = lines.length - 1; k > 0; k--) {
        if (rng.bool(0.3)) {
          const j = rng.int(0, k);
          [lines[k], lines[j]] = [lines[j] ?? new Uint8Array(), lines[k] ?? new Uint8Array()];
        }
      }
      return concat(...lines);
    }
    case 7: {
      // Repeat one line.
      const lines = splitLines(b);
      if (lines.length === 0) return b;
      const k = rng.int(0, lines.length - 1);
      lines.splice(k, 0, lines[k] ?? new Uint8Array());
      return concat(...lines);
    }
    case 8: {
      // Swap LF and CRLF endings throughout.
      const text = new TextDecoder('latin1').decode(b);
      const swapped = text.includes('\r\n') ? text.replaceAll('\r\n', '\n') : text.replaceAll('\n', '\r\n');
      return Uint8Array.from(swapped, (ch) => ch.charCodeAt(0));
    }
    default: {
      // Splice in a piece of the same input from elsewhere.
      const i = at();
      const j = at();
      b = concat(b.subarray(0, i), b.subarray(Math.min(i, j), Math.max(i, j)), b.subarray(i));
      return b;
    }
  }
}

const MID = '2c9b3f0c4d5e4a6fb1e2d3c4b5a69788';
const WORDS: Record<string, readonly string[]> = {
  unit: [
    'db.service',
    'cache.service',
    'web@1.service',
    'web@.service',
    '%p.socket',
    '%n',
    '%N.timer',
    '%p-data@%i.service',
    '%i.service',
    'fuzz.service',
    'x',
    'a b.service',
    '@x.service',
    'foo@1.mount',
    'é.service',
  ],
  glob: [
    '*',
    'db*.service',
    'web@*.service',
    '[a-c]?.service',
    '[',
    'x\\\\',
    '\\*',
    '%p@*.service',
    '[^]',
    '*/*',
    'cache.service',
    '[z-a].service',
  ],
  metadata: ['region=us', 'disk=ssd', 'k=%i', 'a=b=c', '=x', 'x=', 'region', 'rack=a 1', 'k$=v', 'role=%p'],
  machineId: [MID, '2c9b3f0c', '%i', 'a/b', 'node-1', 'a.b:c_d-e'],
  boolean: ['true', 'yes', '1', 'on', 't', 'y', 'false', 'no', '0', 'off', 'maybe', 'TRUE', '%i', 'On'],
  other: ['/bin/true', 'echo %i', 'a=b', '"quoted value"', "'single'", '${VAR}', '\\\\', 'ü世🚀', '%%i'],
};
const KIND_OF: Record<string, string> = {
  MachineID: 'machineId',
  'X-ConditionMachineID': 'machineId',
  'X-ConditionMachineBootID': 'machineId',
  MachineOf: 'unit',
  'X-ConditionMachineOf': 'unit',
  MachineMetadata: 'metadata',
  'X-ConditionMachineMetadata': 'metadata',
  Conflicts: 'glob',
  'X-Conflicts': 'glob',
  Replaces: 'glob',
  Global: 'boolean',
};
const FLEET_KEYS = [...FLEET_OPTION_NAMES, 'machineof', 'GLOBAL', 'Unknown'];
const OTHER_KEYS = [
  'Description',
  'ExecStart',
  'Environment',
  'WantedBy',
  'ListenStream',
  'After',
  'A',
  'x y',
];
const SECTIONS = [
  'Unit',
  'Service',
  'X-Fleet',
  'X-Fleet',
  'X-Fleet',
  'Install',
  'Socket',
  'Timer',
  'x-fleet',
  'X Y',
];
const SPACES = [' ', ' ', ' ', '  ', '\t'];

function randomValue(rng: Random, kind: string): string {
  const words = rng.bool(0.7) ? 1 : rng.int(0, 3);
  const quoteAll = rng.bool(0.2);
  let value = '';
  for (let w = 0; w < words; w++) {
    let word = rng.bool(0.9) ? rng.pick(WORDS[kind] ?? WORDS['other'] ?? []) : rng.string('ab"= %*[\\', 3);
    if (quoteAll || rng.bool(0.1)) word = `"${word}"`;
    value += (w > 0 ? rng.pick(SPACES) : '') + word;
  }
  if (rng.bool(0.05)) value = `"${value}`;
  return value;
}

function randomLine(rng: Random, section: string): string {
  const fleet = section === 'X-Fleet';
  const roll = rng.next();
  if (roll < 0.04) return rng.pick(['', '# comment', '; comment', '  # indented']);
  if (roll < 0.05) return rng.pick(['no equals here', '=empty name', '[broken', '[X-Fleet] x', '[]']);
  const key = fleet && rng.bool(0.9) ? rng.pick(FLEET_KEYS) : rng.pick(OTHER_KEYS);
  const value = randomValue(rng, fleet ? (KIND_OF[key] ?? 'other') : 'other');
  const eq = rng.pick(['=', '=', '=', ' = ', '\t=', '= ']);
  let line = `${rng.bool(0.1) ? '  ' : ''}${key}${eq}${value}`;
  if (rng.bool(0.08)) {
    // Continue the value on the next line, sometimes past a comment.
    line += ` \\\n${rng.bool(0.2) ? '# inside\n' : ''}${rng.pick(SPACES)}${randomValue(rng, fleet ? 'glob' : 'other')}`;
  }
  return line;
}

function randomUnitText(rng: Random): string {
  const lines: string[] = [];
  if (rng.bool(0.1)) lines.push('# leading comment');
  const sections = rng.int(0, 4);
  for (let s = 0; s < sections; s++) {
    const section = rng.pick(SECTIONS);
    lines.push(`${rng.bool(0.05) ? ' ' : ''}[${section}]`);
    const options = rng.int(0, 6);
    for (let o = 0; o < options; o++) lines.push(randomLine(rng, section));
  }
  let text = lines.join(rng.bool(0.15) ? '\r\n' : '\n') + (rng.bool(0.8) ? '\n' : '');
  if (rng.bool(0.05)) text = `\uFEFF${text}`;
  if (rng.bool(0.02)) text += '\uD800';
  return text;
}

// ---- large adversarial inputs -------------------------------------------------------------------

function words(n: number, word: (i: number) => string): string {
  return Array.from({ length: n }, (_, i) => word(i)).join(' ');
}

interface Shape {
  /** What the input is, with `N` standing for its size. */
  readonly title: string;
  /** The size of the small input; the large one is SCALE times larger. */
  readonly n: number;
  readonly text: (n: number) => string;
}

/** Large inputs shaped to find super-linear paths in the parser and the [X-Fleet] reader. */
const SHAPES: readonly Shape[] = [
  { title: 'N short lines', n: 6250, text: (n) => `[Service]\n${'Environment=A=1\n'.repeat(n)}` },
  {
    title: 'one line of N bytes (up to just under 1 MiB)',
    n: 128 * 1024 - 16,
    text: (n) => `[Service]\nExecStart=${'x'.repeat(n)}\n`,
  },
  { title: 'N lines without "="', n: 6250, text: (n) => `[Service]\n${'junk\n'.repeat(n)}` },
  { title: 'N bad [X-Fleet] lines', n: 6250, text: (n) => `[X-Fleet]\n${'Global=maybe\n'.repeat(n)}` },
  { title: 'N sections', n: 6250, text: (n) => '[S]\nA=1\n'.repeat(n) },
  {
    title: 'a glob of N stars against a long peer',
    n: 6250,
    text: (n) => `[X-Fleet]\nMachineOf=${'a'.repeat(229)}.service\nConflicts=${'*a'.repeat(n)}*b\n`,
  },
  {
    title: 'N specifiers in one value of an instance',
    n: 6250,
    text: (n) => `[X-Fleet]\nMachineMetadata=k=${'%i'.repeat(n)}\n`,
  },
  {
    title: 'N equal Conflicts patterns on one line',
    n: 6250,
    text: (n) => `[X-Fleet]\nConflicts=${words(n, () => 'c.service')}\n`,
  },
  {
    title: 'N distinct MachineMetadata keys on one line',
    n: 2500,
    text: (n) => `[X-Fleet]\nMachineMetadata=${words(n, (i) => `k${i}=v`)}\n`,
  },
  {
    title: 'a value continued over N lines',
    n: 5000,
    text: (n) => `[Service]\nExecStart=${'a\\\n'.repeat(n)}\n`,
  },
  {
    title: 'N distinct Conflicts patterns on one line',
    n: 750,
    text: (n) => `[X-Fleet]\nConflicts=${words(n, (i) => `c${i}.service`)}\n`,
  },
  {
    title: 'N distinct MachineOf peers, one a line',
    n: 750,
    text: (n) => `[X-Fleet]\n${Array.from({ length: n }, (_, i) => `MachineOf=p${i}.service\n`).join('')}`,
  },
  {
    title: 'N MachineOf peers against as many Conflicts patterns',
    n: 64,
    text: (n) =>
      `[X-Fleet]\nMachineOf=${words(n, (i) => `p${i}.service`)}\nConflicts=${words(n, (i) => `c${i}*.service`)}\n`,
  },
];

/** The best of `runs` timings of both parsers on the input. */
function bestTime(name: string, input: Uint8Array, runs: number): number {
  let best = Infinity;
  for (let k = 0; k < runs; k++) {
    const start = performance.now();
    parseUnit(name, input);
    parseUnitFile(input, name);
    best = Math.min(best, performance.now() - start);
  }
  return best;
}

// ---- the tests ----------------------------------------------------------------------------------

describe('unit parser fuzzing', function () {
  this.timeout(60_000);
  const fixtures = loadFixtures();

  function report(run: Run): void {
    // A hang guard must also have run: an empty loop would pass every check.
    if (run.inputs === 0) throw new Error(`${run.generator}: no inputs`);
    if (run.slowestMs > HANG_MS) throw new Error(`${run.generator}: slowest ${run.slowestCase}`);
  }

  it('never throws or hangs on 30,000 random byte strings', () => {
    const rng = new Random(SEED);
    const run = new Run(`random bytes (seed ${SEED})`);
    for (let i = 0; i < 30_000; i++) check(run, i, pickName(rng), randomBytes(rng));
    report(run);
  });

  it('keeps its guarantees on 45,000 mutations of the fixture files', () => {
    const rng = new Random(SEED + 1);
    const run = new Run(`fixture mutations (seed ${SEED + 1})`);
    if (fixtures.length === 0) throw new Error('no fixtures to mutate');
    for (let i = 0; i < 45_000; i++) {
      const seed = rng.pick(fixtures);
      let bytes = seed.bytes;
      const rounds = rng.int(1, 4);
      for (let k = 0; k < rounds; k++) bytes = mutate(rng, bytes);
      check(run, i, rng.bool(0.85) ? seed.name : pickName(rng), bytes);
    }
    report(run);
  });

  it('keeps its guarantees on 30,000 random structured unit files', () => {
    const rng = new Random(SEED + 2);
    const run = new Run(`structured units (seed ${SEED + 2})`);
    for (let i = 0; i < 30_000; i++) {
      const name = pickName(rng);
      const text = randomUnitText(rng);
      if (rng.bool()) {
        check(run, i, name, text);
      } else {
        const bytes = utf8.encode(text);
        check(run, i, name, bytes);
        if (!text.includes('\uD800')) checkBytesMatchText(run, i, name, bytes, text);
      }
    }
    report(run);
    // The round-trip checks only mean something if many random units are accepted.
    if (run.accepted < 3000)
      throw new Error(`only ${run.accepted} of ${run.inputs} structured units accepted`);
  });

  describe('on large adversarial files, in time about linear in their size', () => {
    const name = 'big@7.service';
    SHAPES.forEach((shape, index) => {
      const sizes = `${shape.n.toLocaleString('en-US')} and ${(shape.n * SCALE).toLocaleString('en-US')}`;
      it(`parses ${shape.title.replace('N', sizes)} in proportionate time`, () => {
        const run = new Run(`large input "${shape.title}"`);
        const small = utf8.encode(shape.text(shape.n));
        const large = utf8.encode(shape.text(shape.n * SCALE));
        // Both must keep every guarantee; their times are judged below, the ratio first.
        const tSmall = Math.min(check(run, index, name, small, Infinity), bestTime(name, small, 2));
        let tLarge = check(run, index, name, large, Infinity);
        const ratio = (): number => tLarge / Math.max(tSmall, FLOOR_MS);
        // Time once more only what may be noise, not what is clearly super-linear.
        if (ratio() > MAX_RATIO && ratio() < 3 * MAX_RATIO)
          tLarge = Math.min(tLarge, bestTime(name, large, 1));
        if (ratio() > MAX_RATIO) {
          run.fail(
            index,
            name,
            `${SCALE} times the input took ${ratio().toFixed(0)} times as long ` +
              `(${tSmall.toFixed(1)} ms for ${small.length} bytes, ${tLarge.toFixed(1)} ms for ${large.length} bytes; ` +
              `linear is about ${SCALE}, at most ${MAX_RATIO} allowed)`,
            large,
          );
        }
        const bound = largeBoundMs(large.length);
        if (tLarge > bound)
          run.fail(index, name, `took ${tLarge.toFixed(1)} ms, over the ${bound.toFixed(1)} ms bound`, large);
      });
    });
  });
});

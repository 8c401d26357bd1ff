// The project's boundaries, as ESLint rules (kept apart from eslint.config.js so a spec can lint
// fixtures with exactly these rules: spec/lint/boundaries.spec.ts).
//
// Imports point one way (docs/design.md): lib <- unit <- registry <- engine, agent <- fleetd;
// fleetctl talks to fleetd over HTTP and shares only lib and unit; nothing in the product imports
// bench, spec or the test fixtures.

/** Top-level folders a folder's files may not import from. */
const FORBIDDEN = {
  lib: ['unit', 'registry', 'engine', 'agent', 'fleetd', 'fleetctl'],
  unit: ['registry', 'engine', 'agent', 'fleetd', 'fleetctl'],
  registry: ['engine', 'agent', 'fleetd', 'fleetctl'],
  engine: ['agent', 'fleetd', 'fleetctl'],
  agent: ['engine', 'fleetd', 'fleetctl'],
  fleetd: ['fleetctl'],
  fleetctl: ['registry', 'engine', 'agent', 'fleetd'],
};
const TEST_ONLY = ['bench', 'spec', 'systemd-fixtures'];

/** A relative import that climbs to the repository root and enters `folder`. */
function intoFolder(folder) {
  return `^(\\.\\./)+${folder}/`;
}

function layerRules(folder) {
  const forbidden = [...FORBIDDEN[folder], ...TEST_ONLY];
  return {
    'no-restricted-imports': [
      'error',
      {
        patterns: forbidden.map((target) => ({
          regex: intoFolder(target),
          message: `${folder}/ may not import ${target}/: imports point lib <- unit <- registry <- engine, agent <- fleetd, and fleetctl uses only lib and unit (docs/design.md).`,
        })),
      },
    ],
  };
}

/** Product folders: every file there keeps these rules. */
export const PRODUCT = Object.keys(FORBIDDEN);

/** Longest product file, in lines, before it must say why (an eslint-disable max-lines comment with a reason). */
export const MAX_LINES = 400;

export const boundaries = [
  ...PRODUCT.map((folder) => ({ files: [`${folder}/**/*.ts`], rules: layerRules(folder) })),
  {
    files: PRODUCT.map((folder) => `${folder}/**/*.ts`),
    rules: {
      'max-lines': ['error', { max: MAX_LINES, skipBlankLines: false, skipComments: false }],
      // Time comes from the injected Clock (lib/clock.ts), so tests can drive it.
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'Use the injected Clock (lib/clock.ts) for time.' },
      ],
    },
  },
  { files: ['lib/clock.ts'], rules: { 'no-restricted-properties': 'off' } },
  {
    // Nothing but the benchmarks imports the benchmarks.
    files: ['systemd-fixtures/**/*.ts', 'spec/**/*.ts'],
    ignores: ['spec/bench/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [{ regex: intoFolder('bench'), message: 'Only bench/ and its own specs import bench/.' }],
        },
      ],
    },
  },
  {
    // Tests import describe/it/hooks from mocha explicitly, so the source says where they come from.
    files: ['spec/**/*.ts'],
    rules: {
      'no-restricted-globals': [
        'error',
        ...['describe', 'it', 'before', 'after', 'beforeEach', 'afterEach', 'context', 'specify'].map(
          (name) => ({
            name,
            message: `Import ${name} from 'mocha'.`,
          }),
        ),
      ],
    },
  },
];

/** Rules that need type information: every switch over a union handles each member. */
export const typedBoundaries = [
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: false },
      ],
    },
  },
];

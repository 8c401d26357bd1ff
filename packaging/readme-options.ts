// The README's table of fleetd's options, generated from fleetd/config-options.ts (the table
// behind `fleetd --help` and the packaged fleet.conf), so the three never disagree.
//
//   node dist/packaging/readme-options.js          rewrites the table in README.md
//   node dist/packaging/readme-options.js --check  exits 1 when README.md's table is not current
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { OPTION_LIST, envName, flagName } from '../fleetd/config-options.js';
import { REPO_DIR } from './artifacts.js';

export const BEGIN_MARKER =
  '<!-- options table: generated from fleetd/config-options.ts by npm run readme:options; do not edit -->';
export const END_MARKER = '<!-- end of options table -->';

/** A table cell: pipes escaped, and code spans kept. */
function cell(text: string): string {
  return text.replaceAll('|', '\\|');
}

/** The markdown table: every option with its default, variable, flag and meaning. */
export function optionsTable(): string {
  const rows = OPTION_LIST.map((o) => {
    const shown = o.defaultText === '' ? '' : `\`${o.defaultText}\``;
    return `| \`${o.name}\` | ${shown} | \`${envName(o.name)}\`, \`${flagName(o.name)}\` | ${cell(o.meaning)} |`;
  });
  return ['| option | default | variable, flag | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** `readme` with the text between the markers replaced by the current table. */
export function withOptionsTable(readme: string): string {
  const begin = readme.indexOf(BEGIN_MARKER);
  const end = readme.indexOf(END_MARKER);
  if (begin === -1 || end === -1 || end < begin) {
    throw new Error('README.md has no options table markers');
  }
  return `${readme.slice(0, begin)}${BEGIN_MARKER}\n\n${optionsTable()}\n\n${readme.slice(end)}`;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const path = join(REPO_DIR, 'README.md');
  const current = readFileSync(path, 'utf8');
  const next = withOptionsTable(current);
  if (process.argv[2] === '--check') {
    if (next !== current) {
      process.stderr.write('README.md: the options table is not current: run npm run readme:options\n');
      process.exit(1);
    }
  } else if (next !== current) {
    writeFileSync(path, next);
    process.stdout.write('README.md: options table rewritten\n');
  }
}

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

import { expect } from 'chai';
import { describe, it } from 'mocha';

import { repoRoot } from '../../systemd-fixtures/repo-root.js';

/**
 * The repository stands alone: whoever clones it can follow every reference in its code and docs.
 * Documents that live outside the repository are never cited; sections of docs/fleet-compat.md that
 * code cites (`docs/fleet-compat.md §N.M`) exist there.
 */

const ROOT = repoRoot();
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', 'results']);
const TEXT = /\.(ts|js|cjs|md|json|sh|service|socket|conf)$|^run$|^cluster$/;

function* textFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    if (SKIP_DIRS.has(name)) continue;
    const path = join(dir, name);
    const stat = statSync(path);
    if (stat.isDirectory()) yield* textFiles(path);
    else if (TEXT.test(name) && name !== 'package-lock.json') yield path;
  }
}

/** Names of documents outside the repository, as they would be cited. */
const OUTSIDE = [/\.\.\/shared\b/, /FLEET-COMPAT/, /(?<![\w/.-])(STYLE|LAB|DESIGN)\.md\b/];

/** `§1.6`, `§4.3-4.5`, `§12` as cited after docs/fleet-compat.md. */
const CITATION = /docs\/fleet-compat\.md §(\d+(?:\.\d+)?)/g;

describe('the repository stands alone', () => {
  const files = [...textFiles(ROOT)];
  // This file names the patterns it looks for.
  const self = 'spec/docs/references.spec.ts';

  it('finds the source tree', () => {
    expect(files.map((f) => relative(ROOT, f))).to.include.members(['README.md', 'docs/fleet-compat.md']);
  });

  it('cites no document outside the repository', () => {
    const offenders: string[] = [];
    for (const file of files) {
      const rel = relative(ROOT, file);
      if (rel === self) continue;
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (OUTSIDE.some((re) => re.test(line))) offenders.push(`${rel}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(offenders, offenders.join('\n')).to.deep.equal([]);
  });

  it('cites only sections that docs/fleet-compat.md has', () => {
    const headings = new Set(
      [
        ...readFileSync(join(ROOT, 'docs/fleet-compat.md'), 'utf8').matchAll(/^#{2,4} (\d+(?:\.\d+)?)[. ]/gm),
      ].map((m) => m[1]),
    );
    expect(headings.size).to.be.greaterThan(40);
    const missing: string[] = [];
    for (const file of files) {
      for (const m of readFileSync(file, 'utf8').matchAll(CITATION)) {
        if (!headings.has(m[1])) missing.push(`${relative(ROOT, file)}: §${m[1]}`);
      }
    }
    expect(missing, missing.join('\n')).to.deep.equal([]);
  });
});

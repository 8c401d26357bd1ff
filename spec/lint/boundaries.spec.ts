import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { expect } from 'chai';
import { ESLint, type Linter } from 'eslint';
import { before, describe, it } from 'mocha';
import tseslint from 'typescript-eslint';

import { repoRoot } from '../../systemd-fixtures/repo-root.js';

/**
 * The boundaries in eslint-boundaries.js are rules the build keeps, not prose: each is shown here
 * failing on purpose, on a file placed where it would break the layering, and passing where the
 * layering allows it. (`npm run lint` applies the same rules to the whole tree.)
 */

interface BoundariesModule {
  readonly boundaries: Linter.Config[];
  readonly MAX_LINES: number;
}

const ROOT = repoRoot();

describe('lint boundaries', function () {
  this.timeout(60_000);
  let eslint: ESLint;
  let maxLines: number;

  before(async () => {
    const mod = (await import(pathToFileURL(join(ROOT, 'eslint-boundaries.js')).href)) as BoundariesModule;
    maxLines = mod.MAX_LINES;
    eslint = new ESLint({
      cwd: ROOT,
      overrideConfigFile: true,
      overrideConfig: [
        { files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } },
        ...mod.boundaries,
      ],
    });
  });

  /** The rule ids ESLint reports for `code` as if it were the file `path`. */
  async function violations(path: string, code: string): Promise<string[]> {
    const [result] = await eslint.lintText(code, { filePath: join(ROOT, path) });
    return (result?.messages ?? []).map((m) => m.ruleId ?? `fatal: ${m.message}`);
  }

  const layering: { from: string; imports: string; allowed: boolean }[] = [
    { from: 'lib/x.ts', imports: '../unit/unit-name.js', allowed: false },
    { from: 'unit/x.ts', imports: '../registry/registry.js', allowed: false },
    { from: 'unit/x.ts', imports: '../lib/errors.js', allowed: true },
    { from: 'registry/x.ts', imports: '../engine/engine.js', allowed: false },
    { from: 'engine/x.ts', imports: '../agent/agent.js', allowed: false },
    { from: 'engine/x.ts', imports: '../registry/registry.js', allowed: true },
    { from: 'agent/x.ts', imports: '../engine/engine.js', allowed: false },
    { from: 'fleetd/api/x.ts', imports: '../../fleetctl/client.js', allowed: false },
    { from: 'fleetd/x.ts', imports: '../agent/agent.js', allowed: true },
    { from: 'fleetctl/x.ts', imports: '../registry/registry.js', allowed: false },
    { from: 'fleetctl/commands/x.ts', imports: '../../unit/unit-name.js', allowed: true },
    { from: 'agent/x.ts', imports: '../spec/helpers/random.js', allowed: false },
    { from: 'fleetd/x.ts', imports: '../systemd-fixtures/lab/lab.js', allowed: false },
    { from: 'spec/agent/x.spec.ts', imports: '../../bench/lib/stats.js', allowed: false },
  ];
  for (const { from, imports, allowed } of layering) {
    it(`${allowed ? 'lets' : 'stops'} ${from} import ${imports}`, async () => {
      const found = await violations(from, `import { x } from '${imports}';\nexport const y = x;\n`);
      expect(found).to.deep.equal(allowed ? [] : ['no-restricted-imports']);
    });
  }

  it('stops a product file longer than the maximum, unless it says why', async () => {
    const long = Array.from({ length: maxLines + 1 }, (_, i) => `export const v${i} = ${i};`).join('\n');
    expect(await violations('engine/x.ts', long)).to.deep.equal(['max-lines']);
    expect(
      await violations('engine/x.ts', `/* eslint-disable max-lines -- one table. */\n${long}`),
    ).to.deep.equal([]);
    expect(await violations('spec/engine/x.spec.ts', long)).to.deep.equal([]);
  });

  it('stops Date.now outside the clock', async () => {
    const code = 'export const t = Date.now();\n';
    expect(await violations('agent/x.ts', code)).to.deep.equal(['no-restricted-properties']);
    expect(await violations('lib/clock.ts', code)).to.deep.equal([]);
  });

  it('stops a spec that uses mocha globals instead of importing them', async () => {
    const code = "describe('x', () => {\n  it('y', () => undefined);\n});\n";
    expect(await violations('spec/x.spec.ts', code)).to.deep.equal([
      'no-restricted-globals',
      'no-restricted-globals',
    ]);
    expect(
      await violations('spec/x.spec.ts', `import { describe, it } from 'mocha';\n${code}`),
    ).to.deep.equal([]);
  });
});

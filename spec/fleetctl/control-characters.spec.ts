import { expect } from 'chai';
import { afterEach, beforeEach, describe, it } from 'mocha';
import { formatTable } from '../../fleetctl/table.js';
import { unitRecord } from '../helpers/registry-builders.js';
import { Harness, M1 } from './harness.js';

/**
 * Descriptions, names and metadata are written by whoever can reach the API or etcd: printed raw,
 * `ESC ]0;...BEL` retitles the operator's terminal and other sequences hide or fake output.
 */
describe('fleetctl output escapes control characters', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.start();
  });

  afterEach(async () => {
    await h.close();
  });

  it('escapes them in table cells, a TAB included', () => {
    expect(formatTable([['a\u001b]0;x\u0007', 'b\tc']])).to.equal('a\\x1b]0;x\\x07\tb\\x09c\n');
  });

  it('prints a description with an escape sequence escaped in list-unit-files', async () => {
    const base = unitRecord('evil.service');
    await h.registry.submitUnit(
      {
        ...base,
        hash: 'e'.repeat(40),
        options: [
          { section: 'Unit', name: 'Description', value: '\u001b]0;owned\u0007\u001b[2J' },
          ...base.options,
        ],
      },
      'inactive',
    );
    await h.machine(M1, '10.0.0.1');
    const r = await h.run(['list-unit-files', '--full', '--fields', 'unit,desc']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout, JSON.stringify(r.stdout)).to.contain('\\x1b]0;owned\\x07\\x1b[2J');
    expect(r.stdout.includes('\u001b') || r.stdout.includes('\u0007')).to.equal(false);
  });
});

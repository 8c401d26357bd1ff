import { expect } from 'chai';
import { afterEach, beforeEach, describe, it } from 'mocha';

import { sinceTime } from '../../fleetctl/commands/events.js';
import type { ClusterEvent } from '../../unit/cluster-events.js';
import { Harness, M1, M2 } from './harness.js';

const DAY = { maxAgeMs: 86_400_000 };
const T = Date.parse('2026-12-08T01:00:00.000Z');

function event(
  offsetMs: number,
  kind: ClusterEvent['kind'],
  unit: string | undefined,
  machine: string,
  message: string,
) {
  return {
    time: T + offsetMs,
    kind,
    ...(unit === undefined ? {} : { unit }),
    machine,
    message,
    reporter: M1,
  };
}

describe('fleetctl events', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.start();
    await h.machine(M1, '10.0.0.1');
    await h.machine(M2, '10.0.0.2');
    await h.registry.recordEvents(
      [
        event(0, 'placed', 'web.service', M1, `placed on ${M1}: least loaded`),
        event(1000, 'machine-lost', undefined, M1, `machine ${M1} is gone`),
        event(2000, 'moved', 'web.service', M2, `moved from ${M1} to ${M2}: machine ${M1} went away`),
        event(3000, 'started', 'db.service', M2, 'started'),
      ],
      DAY,
    );
  });

  afterEach(async () => {
    await h.close();
  });

  it('prints the history oldest first as a table, and one unit with its moves and their reasons', async () => {
    const all = await h.run(['events']);
    expect(all.code).to.equal(0);
    const lines = all.stdout.trimEnd().split('\n');
    expect(lines[0]).to.match(/^TIME\s+KIND\s+UNIT\s+MACHINE\s+MESSAGE$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[1])).to.deep.equal([
      'placed',
      'machine-lost',
      'moved',
      'started',
    ]);
    const web = await h.run(['events', '--no-legend', 'web.service']);
    expect(web.stdout.trimEnd().split('\n')).to.have.length(2);
    expect(web.stdout).to.contain(`moved from ${M1} to ${M2}: machine ${M1} went away`);
  });

  it('filters by machine and kind and prints JSON lines with --output json', async () => {
    const r = await h.run(['events', '--machine', M1, '--kind', 'machine-lost', '--output', 'json']);
    expect(r.code).to.equal(0);
    const docs = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; machine: string; time: string });
    expect(docs).to.have.length(1);
    expect(docs[0]).to.include({ kind: 'machine-lost', machine: M1, time: '2026-12-08T01:00:01.000Z' });
  });

  it('refuses a --since it cannot read, and reads durations and RFC 3339 times', async () => {
    const r = await h.run(['events', '--since', 'lately']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.contain('Invalid --since "lately"');
    expect(sinceTime('10m', T)).to.equal('2026-12-08T00:50:00.000Z');
    expect(sinceTime('1h30m', T)).to.equal('2026-12-07T23:30:00.000Z');
    expect(sinceTime('2026-12-08T00:00:00Z', T)).to.equal('2026-12-08T00:00:00.000Z');
    expect(sinceTime('10', T)).to.equal(undefined);
  });
});

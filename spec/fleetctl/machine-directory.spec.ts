import { expect } from 'chai';
import { describe, it } from 'mocha';

import type { ApiMachine, FleetClient } from '../../fleetctl/client.js';
import { MachineDirectory } from '../../fleetctl/machines.js';

describe('fleetctl MachineDirectory', () => {
  const m1: ApiMachine = { id: 'a1b2c3d4e5', primaryIP: '10.0.0.1', metadata: {} };

  function directory(): { dir: MachineDirectory; reads: () => number; release: () => void } {
    let reads = 0;
    let release: () => void = () => undefined;
    const client = {
      listMachines: async (): Promise<ApiMachine[]> => {
        reads++;
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        return [m1];
      },
    } as unknown as FleetClient;
    return {
      dir: new MachineDirectory(client),
      reads: () => reads,
      release: () => {
        release();
      },
    };
  }

  it('shares one machine list among lookups made while it is being read', async () => {
    const { dir, reads, release } = directory();
    const lookups = Array.from({ length: 50 }, () => dir.legend('a1b2c3d4e5'));
    await Promise.resolve();
    release();
    const legends = await Promise.all(lookups);
    expect(reads()).to.equal(1);
    expect(new Set(legends)).to.deep.equal(new Set(['a1b2c3d4.../10.0.0.1']));
  });

  it('reads again for a machine it does not know, once the previous read is done', async () => {
    const { dir, reads, release } = directory();
    const first = dir.get('a1b2c3d4e5');
    await Promise.resolve();
    release();
    expect(await first).to.deep.equal(m1);
    const unknown = dir.get('ffffffff');
    await Promise.resolve();
    release();
    expect(await unknown).to.equal(undefined);
    expect(reads()).to.equal(2);
  });
});

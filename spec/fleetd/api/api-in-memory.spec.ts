import { after, before, describe } from 'mocha';
import { InMemoryRegistry } from '../../../registry/in-memory-registry.js';
import { apiContract } from './api.contract.js';
import { openSubject, tempDir } from './api-harness.js';

/** The same contract against InMemoryRegistry over a unix socket: the fake must not drift. */
describe('fleetd/api on InMemoryRegistry', () => {
  let dir: { dir: string; cleanup(): Promise<void> };

  before(async () => {
    dir = await tempDir('fleet-api-mem-');
  });

  after(async () => {
    await dir.cleanup();
  });

  apiContract('InMemoryRegistry over unix', (tuning) =>
    openSubject({ make: () => Promise.resolve(new InMemoryRegistry()) }, 'unix', tuning, {
      socketDir: dir.dir,
    }),
  );
});

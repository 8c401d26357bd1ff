/**
 * The HTTP API v1 contract (docs/fleet-compat.md §8): every endpoint, status code and message, run
 * unchanged against each registry and transport the API is served with.
 */
import { afterEach, beforeEach, describe } from 'mocha';
import type { ApiSubject, ApiTuning, ContractScope } from './api-harness.js';
import { machinesContract } from './machines.contract.js';
import { routingContract } from './routing.contract.js';
import { stateContract } from './state.contract.js';
import { unitsReadContract } from './units-read.contract.js';
import { unitsWriteContract } from './units-write.contract.js';

/** Runs the whole contract; `open` starts a fresh server on a fresh, empty registry. */
export function apiContract(label: string, open: (tuning: ApiTuning) => Promise<ApiSubject>): void {
  describe(`HTTP API v1 contract: ${label}`, function () {
    this.timeout(20_000);
    const opened: ApiSubject[] = [];
    let current: ApiSubject | undefined;
    const scope: ContractScope = {
      get api(): ApiSubject {
        if (current === undefined) throw new Error('no API subject outside a test');
        return current;
      },
      open: async (tuning) => {
        const subject = await open(tuning);
        opened.push(subject);
        return subject;
      },
    };

    beforeEach(async () => {
      current = await scope.open({});
    });

    afterEach(async () => {
      current = undefined;
      await Promise.all(opened.splice(0).map((s) => s.cleanup()));
    });

    routingContract(scope);
    unitsReadContract(scope);
    unitsWriteContract(scope);
    stateContract(scope);
    machinesContract(scope);
  });
}

import { expect } from 'chai';
import { describe, it } from 'mocha';

import { decideShutdown } from '../../fleetd/shutdown-mode.js';

describe('fleetd/shutdown-mode: restart or stop', () => {
  const cases: [string | undefined, string, 'restart' | 'stop'][] = [
    ['restart', 'SIGTERM', 'restart'],
    ['try-restart', 'SIGTERM', 'restart'],
    ['reload-or-restart', 'SIGTERM', 'restart'],
    ['restart', 'SIGINT', 'restart'],
    ['stop', 'SIGTERM', 'stop'],
    ['stop', 'SIGUSR2', 'stop'],
    [undefined, 'SIGTERM', 'stop'],
    [undefined, 'SIGINT', 'stop'],
    [undefined, 'SIGUSR2', 'restart'],
    ['start', 'SIGTERM', 'stop'],
    ['start', 'SIGUSR2', 'restart'],
  ];
  for (const [job, signal, mode] of cases) {
    it(`decides ${mode} for ${signal} with ${job === undefined ? 'no systemd job' : `a ${job} job`}`, () => {
      const d = decideShutdown(job, signal);
      expect(d.mode).to.equal(mode);
      expect(d.reason).to.include(job === undefined ? 'no systemd job' : job);
    });
  }
});

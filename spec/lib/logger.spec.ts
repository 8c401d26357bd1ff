import { expect } from 'chai';
import { describe, it } from 'mocha';

import { FleetError, describeError, isFleetError } from '../../lib/errors.js';
import { createLogger, MemoryLogger, stderrIsJournal } from '../../lib/logger.js';

describe('lib/logger and lib/errors', () => {
  it('keeps constant messages and puts data in fields, child fields included', () => {
    const log = new MemoryLogger();
    log.child({ component: 'engine' }).info('unit scheduled', { unit: 'a.service' });
    expect(log.records).to.deep.equal([
      { level: 'info', message: 'unit scheduled', fields: { component: 'engine', unit: 'a.service' } },
    ]);
  });

  it('creates a winston logger in JSON and text forms', () => {
    for (const json of [true, false]) {
      const log = createLogger({ json, level: 'error' });
      log.child({ c: 1 }).debug('hidden');
      expect(typeof log.info).to.equal('function');
    }
  });

  it('gives FleetError a stable code, a retryable marker and a cause', () => {
    const cause = new Error('socket closed');
    const err = new FleetError('TIMEOUT', 'etcd did not answer within 1000 ms', { retryable: true, cause });
    expect(err.code).to.equal('TIMEOUT');
    expect(err.retryable).to.equal(true);
    expect(err.cause).to.equal(cause);
    expect(isFleetError(err, 'TIMEOUT')).to.equal(true);
    expect(isFleetError(err, 'ABORTED')).to.equal(false);
    expect(isFleetError(new Error('x'))).to.equal(false);
    expect(describeError(err)).to.equal('etcd did not answer within 1000 ms');
    expect(describeError('plain')).to.equal('plain');
  });
});

describe('stderrIsJournal', () => {
  const fd = (): { dev: number; ino: number } => ({ dev: 64769, ino: 123 });
  it('is true only when JOURNAL_STREAM names the device and inode of stderr', () => {
    expect(stderrIsJournal({ JOURNAL_STREAM: '64769:123' }, fd)).to.equal(true);
    expect(stderrIsJournal({ JOURNAL_STREAM: '64769:124' }, fd)).to.equal(false);
    expect(stderrIsJournal({}, fd)).to.equal(false);
    expect(stderrIsJournal({ JOURNAL_STREAM: 'x' }, fd)).to.equal(false);
    expect(stderrIsJournal({ JOURNAL_STREAM: '64769:123' }, () => undefined)).to.equal(false);
  });
});

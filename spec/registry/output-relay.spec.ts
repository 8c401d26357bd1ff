import { expect } from 'chai';
import { after, before, describe, it } from 'mocha';
import { isFleetError } from '../../lib/errors.js';
import { EtcdRegistry } from '../../registry/etcd-registry.js';
import { InMemoryRegistry } from '../../registry/in-memory-registry.js';
import type { OutputChunk, OutputRelay } from '../../registry/output-relay.js';
import { RELAY_MAX_CHUNK_BYTES, splitUtf8 } from '../../registry/output-relay.js';
import { useEtcd } from '../../systemd-fixtures/etcd/etcd-harness.js';
import { eventually } from '../../systemd-fixtures/eventually.js';

async function collect(chunks: AsyncIterable<OutputChunk>): Promise<OutputChunk[]> {
  const all: OutputChunk[] = [];
  for await (const c of chunks) all.push(c);
  return all;
}

function text(chunks: readonly OutputChunk[]): string {
  return chunks.map((c) => (c.kind === 'data' ? c.text : '')).join('');
}

/** The output relay's contract, for the in-memory relay and the one through etcd. */
function relayContract(name: string, make: () => Promise<OutputRelay & { close(): Promise<void> }>): void {
  describe(name, () => {
    let relay: OutputRelay & { close(): Promise<void> };
    let n = 0;
    const machine = (): string => `m${process.pid}x${++n}`;

    before(async () => {
      relay = await make();
    });

    after(async () => {
      await relay.close();
    });

    it('carries the text in order and ends with the exit status', async () => {
      const m = machine();
      const sub = await relay.serveOutput(m, async (request, write) => {
        for (let i = 0; i < 100; i++) write(`${request.unit} line ${i}\n`);
        await new Promise((r) => setTimeout(r, 60));
        write('last\n');
        return 3;
      });
      try {
        const chunks = await collect(
          relay.requestOutput(m, { kind: 'status', unit: 'a.service' }, new AbortController().signal),
        );
        const expected = Array.from({ length: 100 }, (_, i) => `a.service line ${i}\n`).join('') + 'last\n';
        expect(text(chunks)).to.equal(expected);
        expect(chunks.at(-1)).to.deep.equal({ kind: 'exit', code: 3 });
      } finally {
        await sub.close();
      }
    });

    it('answers a request that breaks the bounds, or a failing handler, with an error', async () => {
      const m = machine();
      const sub = await relay.serveOutput(m, () => Promise.reject(new Error('no such program')));
      try {
        const bad = await collect(
          relay.requestOutput(
            m,
            { kind: 'journal', unit: 'a.service', lines: -1, follow: false, output: 'short' },
            new AbortController().signal,
          ),
        );
        expect(bad.at(-1)).to.deep.include({ kind: 'error' });
        expect((bad.at(-1) as { message: string }).message).to.contain('lines must be a whole number');
        const failed = await collect(
          relay.requestOutput(m, { kind: 'status', unit: 'a.service' }, new AbortController().signal),
        );
        expect(failed).to.deep.equal([{ kind: 'error', message: 'no such program' }]);
      } finally {
        await sub.close();
      }
    });

    it('stops a followed answer on the target when the requester aborts', async () => {
      const m = machine();
      let stopped = false;
      const sub = await relay.serveOutput(
        m,
        (_request, write, signal) =>
          new Promise<number>((resolve) => {
            const timer = setInterval(() => {
              write('tick\n');
            }, 20);
            signal.addEventListener('abort', () => {
              clearInterval(timer);
              stopped = true;
              resolve(0);
            });
          }),
      );
      try {
        const stop = new AbortController();
        let seen = '';
        for await (const c of relay.requestOutput(
          m,
          { kind: 'journal', unit: 'a.service', lines: 0, follow: true, output: 'cat' },
          stop.signal,
        )) {
          if (c.kind === 'data') seen += c.text;
          if (seen.split('tick').length > 3) stop.abort();
        }
        expect(seen).to.contain('tick\ntick\n');
        await eventually(() => expect(stopped).to.equal(true), { timeoutMs: 5_000 });
      } finally {
        await sub.close();
      }
    });

    it('says a machine that serves nothing does not answer', async function () {
      this.timeout(15_000);
      const started = Date.now();
      try {
        await collect(
          relay.requestOutput(machine(), { kind: 'status', unit: 'a.service' }, new AbortController().signal),
        );
        expect.fail('answered');
      } catch (err) {
        expect(isFleetError(err, 'MACHINE_UNREACHABLE'), String(err)).to.equal(true);
        expect((err as Error).message).to.match(/did not answer within 5000 ms/);
      }
      expect(Date.now() - started).to.be.within(4_900, 8_000);
    });
  });
}

describe('the output relay', () => {
  relayContract('in memory', () => Promise.resolve(new InMemoryRegistry()));

  describe('through etcd', () => {
    const etcd = useEtcd();
    relayContract('on a real etcd', () =>
      Promise.resolve(
        new EtcdRegistry({ endpoints: [etcd.current.clientUrl], prefix: `/relay-${process.pid}/` }),
      ),
    );
  });

  it('splits text into chunks without cutting a character', () => {
    const text = 'é'.repeat(RELAY_MAX_CHUNK_BYTES);
    const pieces = splitUtf8(text, RELAY_MAX_CHUNK_BYTES);
    expect(pieces.join('')).to.equal(text);
    for (const p of pieces) expect(Buffer.byteLength(p)).to.be.at.most(RELAY_MAX_CHUNK_BYTES);
    expect(pieces).to.have.length(2);
  });
});

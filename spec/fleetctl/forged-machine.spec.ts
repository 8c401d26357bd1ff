import { access } from 'node:fs/promises';
import * as path from 'node:path';
import { expect } from 'chai';
import { after, afterEach, before, beforeEach, describe, it } from 'mocha';
import { silentLogger } from '../../lib/logger.js';
import { ApiServer } from '../../fleetd/api/server.js';
import { encodeMachine } from '../../registry/codec.js';
import { EtcdRegistry } from '../../registry/etcd-registry.js';
import { KeyLayout } from '../../registry/keys.js';
import { run } from '../../fleetctl/program.js';
import { useEtcd } from '../../systemd-fixtures/etcd/etcd-harness.js';
import { Harness, M1, M2, sink } from './harness.js';

/** True when the file exists. */
async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * A machine record is written by whoever can write etcd, every cluster member included. fleetctl
 * hands machine addresses to the system ssh client: a record whose "IP" is an ssh option must never
 * make ssh run a command on the operator's machine. These runs use the real `ssh` (no recording
 * runner): on the old code `ssh ... -oProxyCommand=touch FILE` ran `touch FILE` locally.
 */
describe('fleetctl with a forged machine record', () => {
  describe('through the API (fleetctl checks addresses itself)', () => {
    let h: Harness;
    let marker: string;

    beforeEach(async () => {
      h = await Harness.start();
      marker = path.join(h.dir, 'pwned');
      await h.machine(M1, `-oProxyCommand=touch ${marker}`);
      await h.machine(M2, '10.0.0.2');
      await h.unit('hello.service', 'launched');
      await h.place('hello.service', M1);
      await h.report('hello.service', M1);
      await h.unit('g.service', 'launched', ['Global=true']);
      await h.report('g.service', M1);
    });

    afterEach(async () => {
      await h.close();
    });

    const refusal = `Machine ${M1} has an invalid address "-oProxyCommand=touch `;

    for (const args of [
      ['status', '--ssh', 'hello.service'],
      ['status', '--ssh', 'g.service'],
      ['journal', '--ssh', 'hello.service'],
      ['journal', '--ssh', '--sudo', 'hello.service'],
      ['ssh', 'hello.service'],
      ['ssh', '-m', M1.slice(0, 6), '--', 'uptime'],
      ['ssh', '--unit', 'hello.service', '--', 'uptime'],
    ]) {
      it(`runs nothing locally for fleetctl ${args.join(' ')}`, async () => {
        const r = await h.run(args);
        expect(await exists(marker), 'the forged ProxyCommand ran').to.equal(false);
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain(refusal);
      });
    }
  });

  describe('written straight into etcd', () => {
    const etcd = useEtcd();
    let registry: EtcdRegistry;
    let server: ApiServer;
    let h: Harness;
    const prefix = `/fleet-forged-${process.pid}/`;

    before(async () => {
      h = await Harness.start();
      registry = new EtcdRegistry({ endpoints: [etcd.current.clientUrl], prefix });
      server = new ApiServer({ registry, logger: silentLogger });
      await server.listenUnix(path.join(h.dir, 'etcd.sock'));
    });

    after(async () => {
      await server.close();
      await registry.close();
      await h.close();
    });

    it('makes ssh to the machine run no local command', async () => {
      const marker = path.join(h.dir, 'pwned-etcd');
      const forged = encodeMachine({
        id: M1,
        publicIp: `-oProxyCommand=touch ${marker}`,
        metadata: {},
        version: '0.1.0',
      });
      const client = etcd.current.client();
      try {
        await client.put(new KeyLayout(prefix).machine(M1)).value(forged);
      } finally {
        client.close();
      }
      for (const args of [
        ['ssh', '-m', M1.slice(0, 6)],
        ['ssh', M1, '--', 'uptime'],
      ]) {
        const out = sink();
        const err = sink();
        const code = await run(args, {
          env: { PATH: process.env.PATH, HOME: h.dir, FLEETCTL_ENDPOINT: `unix://${h.dir}/etcd.sock` },
          stdout: out.stream,
          stderr: err.stream,
          cwd: h.dir,
          machineIdFile: path.join(h.dir, 'no-machine-id'),
        });
        expect(await exists(marker), `${args.join(' ')}: the forged ProxyCommand ran`).to.equal(false);
        expect(code, args.join(' ')).to.not.equal(0);
      }
    });
  });
});

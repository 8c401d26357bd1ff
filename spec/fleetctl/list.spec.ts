import { expect } from 'chai';
import { describe, it, beforeEach, afterEach } from 'mocha';
import { Harness, M1, M2 } from './harness.js';

/** A third machine that is placed on but no longer alive (its unit state remains for a while). */
const GONE = '0123456789abcdef0123456789abcdef';

describe('fleetctl list commands', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.start();
    await h.machine(M1, '10.0.0.1', { region: 'us-east', disk: 'ssd' });
    await h.machine(M2, '10.0.0.2');
  });

  afterEach(async () => {
    await h.close();
  });

  async function seedUnits(): Promise<void> {
    await h.unit('hello.service', 'launched');
    await h.unit('web@1.service', 'loaded');
    await h.unit('idle.service');
    await h.unit('everywhere.service', 'launched', ['Global=true']);
    await h.place('hello.service', M1);
    await h.place('web@1.service', M2, 'loaded');
    await h.report('hello.service', M1, { hash: 'c0ffee0123456789abcdef0123456789abcdef01' });
    await h.report('web@1.service', M2, { active: 'inactive', sub: 'dead', launched: false, hash: '' });
    await h.report('everywhere.service', M1);
    await h.report('everywhere.service', M2, { active: 'failed', sub: 'failed' });
  }

  describe('list-machines', () => {
    it('prints machines with short IDs, IPs and sorted metadata', async () => {
      const r = await h.run(['list-machines']);
      expect(r).to.deep.equal({
        code: 0,
        stdout:
          'MACHINE\t\tIP\t\tMETADATA\na1b2c3d4...\t10.0.0.1\tdisk=ssd,region=us-east\nf0e1d2c3...\t10.0.0.2\t-\n',
        stderr: '',
      });
    });

    it('prints full IDs with --full, -l and --l, and no header with --no-legend', async () => {
      const want = `${M1}\t10.0.0.1\tdisk=ssd,region=us-east\n` + `${M2}\t10.0.0.2\t-\n`;
      for (const flag of ['--full', '-l', '--l', '--full=true']) {
        expect((await h.run(['list-machines', flag, '--no-legend'])).stdout, flag).to.equal(want);
      }
    });

    it('picks columns with --fields', async () => {
      expect((await h.run(['list-machines', '--fields', 'ip,machine'])).stdout).to.equal(
        'IP\t\tMACHINE\n10.0.0.1\ta1b2c3d4...\n10.0.0.2\tf0e1d2c3...\n',
      );
    });

    it('prints JSON with --output json', async () => {
      const r = await h.run(['list-machines', '--output=json']);
      expect(JSON.parse(r.stdout)).to.deep.equal([
        { machine: M1, ip: '10.0.0.1', metadata: { disk: 'ssd', region: 'us-east' } },
        { machine: M2, ip: '10.0.0.2', metadata: {} },
      ]);
    });

    it('prints only the header when no machine is alive', async () => {
      h.registry.expireMachine(M1);
      h.registry.expireMachine(M2);
      expect(await h.run(['list-machines'])).to.deep.equal({
        code: 0,
        stdout: 'MACHINE\tIP\tMETADATA\n',
        stderr: '',
      });
    });

    it('explains an unreachable fleetd in four lines and exits 1', async () => {
      const endpoint = `unix://${h.dir}/missing.sock`;
      const r = await h.run(['list-machines'], { env: { FLEETCTL_ENDPOINT: endpoint } });
      expect(r.code).to.equal(1);
      expect(r.stdout).to.equal('');
      expect(r.stderr).to.equal(
        `Error retrieving list of active machines from fleet API (cannot reach fleetd at ${endpoint} ` +
          `(connect ENOENT ${h.dir}/missing.sock); is fleetd running?)\n` +
          'Possible issues:\n' +
          '  fleetd is not running, or not reachable at the endpoint\n' +
          '  etcd is unhealthy and/or lost quorum\n',
      );
    });
  });

  describe('list-units', () => {
    it('prints one row per unit and machine, sorted, with - for what is missing', async () => {
      await seedUnits();
      const r = await h.run(['list-units']);
      expect(r.code).to.equal(0);
      expect(r.stderr).to.equal('');
      expect(r.stdout).to.equal(
        'UNIT\t\t\tMACHINE\t\t\tACTIVE\t\tSUB\n' +
          'everywhere.service\ta1b2c3d4.../10.0.0.1\tactive\t\trunning\n' +
          'everywhere.service\tf0e1d2c3.../10.0.0.2\tfailed\t\tfailed\n' +
          'hello.service\t\ta1b2c3d4.../10.0.0.1\tactive\t\trunning\n' +
          'web@1.service\t\tf0e1d2c3.../10.0.0.2\tinactive\tdead\n',
      );
    });

    it('shows hashes (7 or 40 characters), load states and full machine IDs', async () => {
      await seedUnits();
      expect(
        (await h.run(['list-units', '--fields=unit,hash,load,machine', '--no-legend', '-l'])).stdout,
      ).to.equal(
        'everywhere.service\tae1d7b1c0ffee0d4b1e5a6b7c8d9e0f1a2b3c4d5\tloaded\ta1b2c3d4e5f60718293a4b5c6d7e8f90/10.0.0.1\n' +
          'everywhere.service\tae1d7b1c0ffee0d4b1e5a6b7c8d9e0f1a2b3c4d5\tloaded\tf0e1d2c3b4a5968778695a4b3c2d1e0f/10.0.0.2\n' +
          'hello.service\t\tc0ffee0123456789abcdef0123456789abcdef01\tloaded\ta1b2c3d4e5f60718293a4b5c6d7e8f90/10.0.0.1\n' +
          'web@1.service\t\t-\t\t\t\t\t\tloaded\tf0e1d2c3b4a5968778695a4b3c2d1e0f/10.0.0.2\n',
      );
      expect((await h.run(['list-units', '--fields', 'unit,hash', '--no-legend'])).stdout).to.equal(
        'everywhere.service\tae1d7b1\neverywhere.service\tae1d7b1\nhello.service\t\tc0ffee0\nweb@1.service\t\t-\n',
      );
    });

    it('shows a machine that is gone without its IP', async () => {
      await h.unit('orphan.service', 'launched');
      const gone = await h.machine(GONE, '10.0.0.9');
      await gone.publishUnitState({
        unit: 'orphan.service',
        machine: GONE,
        hash: 'h',
        loadState: 'loaded',
        activeState: 'active',
        subState: 'running',
        launched: true,
        updatedAt: 0,
      });
      // The registry keeps states with the lease; simulate a listing where the machine is missing.
      h.registry.machinesById.delete(GONE);
      expect((await h.run(['list-units', '--no-legend'])).stdout).to.equal(
        'orphan.service\t01234567...\tactive\trunning\n',
      );
    });

    it('prints JSON with full values and null for empty ones', async () => {
      await seedUnits();
      const r = await h.run(['list-units', '--output', 'json', '--fields', 'unit,machine,hash,sub']);
      const rows = JSON.parse(r.stdout) as unknown[];
      expect(rows).to.have.length(4);
      expect(rows[3]).to.deep.equal({ unit: 'web@1.service', machine: M2, hash: null, sub: 'dead' });
    });

    it("rejects bad --fields and --output with fleet's messages and exit 1", async () => {
      expect(await h.run(['list-units', '--fields='])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'Error: Must define output format\n',
      });
      expect(await h.run(['list-units', '--fields', 'unit,bogus'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'Error: Invalid key in output format: "bogus"\n',
      });
      expect(await h.run(['list-units', '--output', 'yaml'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'Error: Invalid output format "yaml": use table or json\n',
      });
    });

    it('says why the unit list cannot be read and exits 1', async () => {
      h.registry.partition();
      const r = await h.run(['list-units']);
      h.registry.heal();
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/^Error retrieving list of units from repository: API error 50\d: /);
    });

    it('reads every page when the API pages its answers', async () => {
      const paged = await Harness.start(2);
      try {
        await paged.machine(M1, '10.0.0.1');
        for (const n of [1, 2, 3, 4, 5]) {
          await paged.unit(`u${n}.service`, 'launched');
          await paged.report(`u${n}.service`, M1);
        }
        const r = await paged.run(['list-units', '--no-legend', '--fields', 'unit']);
        expect(r.stdout).to.equal('u1.service\nu2.service\nu3.service\nu4.service\nu5.service\n');
        const files = await paged.run(['list-unit-files', '--no-legend', '--fields', 'unit']);
        expect(files.stdout).to.equal('u1.service\nu2.service\nu3.service\nu4.service\nu5.service\n');
      } finally {
        await paged.close();
      }
    });
  });

  describe('list-unit-files', () => {
    it('prints hash, desired state, current state and target; - and global where fleet did', async () => {
      await seedUnits();
      const r = await h.run(['list-unit-files']);
      expect(r.stderr).to.equal('');
      expect(r.stdout).to.equal(
        'UNIT\t\t\tHASH\tDSTATE\t\tSTATE\t\tTARGET\n' +
          'everywhere.service\td7594b2\tlaunched\t-\t\tglobal\n' +
          'hello.service\t\t8385c91\tlaunched\tlaunched\ta1b2c3d4.../10.0.0.1\n' +
          'idle.service\t\t8385c91\tinactive\tinactive\t-\n' +
          'web@1.service\t\t8385c91\tloaded\t\tloaded\t\tf0e1d2c3.../10.0.0.2\n',
      );
    });

    it('shows descriptions, the global flag and full hashes', async () => {
      await h.file('described.service', '[Unit]\nDescription=some description\n');
      expect((await h.run(['submit', 'described.service'])).code).to.equal(0);
      await h.unit('everywhere.service', 'launched', ['Global=yes']);
      expect(
        (await h.run(['list-unit-files', '--fields', 'unit,desc,global,hash', '--full', '--no-legend']))
          .stdout,
      ).to.equal(
        'described.service\tsome description\tfalse\ta0f275d46bc6ee0eca06be7c339913c07d99c0c7\n' +
          'everywhere.service\t-\t\t\ttrue\t2164d2a342cc617f5fbcd692ac82d9846ef4424a\n',
      );
    });

    it('warns that tmachine is deprecated and prints it like target', async () => {
      await seedUnits();
      const r = await h.run(['list-unit-files', '--fields', 'unit,tmachine', '--no-legend']);
      expect(r.code).to.equal(0);
      expect(r.stderr).to.equal('WARNING: The "tmachine" field is deprecated. Use "target" instead\n');
      expect(r.stdout).to.equal(
        'everywhere.service\tglobal\nhello.service\t\ta1b2c3d4.../10.0.0.1\nidle.service\t\t-\nweb@1.service\t\tf0e1d2c3.../10.0.0.2\n',
      );
    });

    it('prints JSON with booleans, full hashes and the target machine ID', async () => {
      await seedUnits();
      const r = await h.run(['list-unit-files', '--output', 'json', '--fields', 'unit,global,state,target']);
      expect(JSON.parse(r.stdout)).to.deep.equal([
        { unit: 'everywhere.service', global: true, state: null, target: 'global' },
        { unit: 'hello.service', global: false, state: 'launched', target: M1 },
        { unit: 'idle.service', global: false, state: 'inactive', target: null },
        { unit: 'web@1.service', global: false, state: 'loaded', target: M2 },
      ]);
    });
  });
});

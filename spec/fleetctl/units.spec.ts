import { expect } from 'chai';
import { describe, it, beforeEach, afterEach } from 'mocha';
import { Harness } from './harness.js';

const HELLO = '[Unit]\nDescription=Hello\n\n[Service]\nExecStart=/bin/sleep 100\n';
const HELLO_V2 = '[Unit]\nDescription=Hello\n\n[Service]\nExecStart=/bin/sleep 200\n';
const WEB_TEMPLATE = '[Service]\nExecStart=/usr/bin/web --port %i\n\n[X-Fleet]\nConflicts=web@*.service\n';

describe('fleetctl submit, cat and verify (local unit files)', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.start();
  });

  afterEach(async () => {
    await h.close();
  });

  async function hashOf(name: string): Promise<string | undefined> {
    return (await h.registry.getUnit(name))?.unit.hash;
  }

  describe('submit', () => {
    it('submits a local file as an inactive unit', async () => {
      await h.file('hello.service', HELLO);
      expect(await h.run(['submit', 'hello.service'])).to.deep.equal({
        code: 0,
        stdout: 'Unit hello.service inactive\n',
        stderr: '',
      });
      expect(await h.desired('hello.service')).to.equal('inactive');
    });

    it('names units as fleet mangles paths: the base name, .service added', async () => {
      await h.file('units/hello', HELLO);
      await h.file('units/tick.timer', '[Timer]\nOnCalendar=daily\n');
      const r = await h.run(['submit', 'units/hello', 'units/tick.timer']);
      expect(r.stdout).to.equal('Unit hello.service inactive\nUnit tick.timer inactive\n');
      expect(await h.desired('hello.service')).to.equal('inactive');
      expect(await h.desired('tick.timer')).to.equal('inactive');
    });

    it('reads relative paths from the working directory', async () => {
      await h.file('deep/dir/hello.service', HELLO);
      const r = await h.run(['submit', 'hello.service'], { cwd: `${h.dir}/deep/dir` });
      expect(r.code).to.equal(0);
      expect(await h.desired('hello.service')).to.equal('inactive');
    });

    it('prints every problem of an invalid file with its line, submits nothing and exits 1', async () => {
      await h.file('bad.service', '[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineOf=\nGlobal=maybe\n');
      expect(await h.run(['submit', 'bad.service'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr:
          'bad.service line 4: [X-Fleet] MachineOf: needs a unit name, got ""\n' +
          'bad.service line 5: [X-Fleet] Global: expected a boolean (yes/no, true/false, on/off, 1/0), got "maybe"\n' +
          'Error creating units: bad.service is not a valid unit file (2 problems)\n',
      });
      expect(await h.desired('bad.service')).to.equal(undefined);
    });

    it('says when a unit is neither in the registry nor on disk', async () => {
      expect(await h.run(['submit', 'nope'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'Error creating units: unable to find Unit(nope.service) in Registry or on filesystem\n',
      });
    });

    it('exits 1 when no unit is given', async () => {
      expect(await h.run(['submit'])).to.deep.equal({ code: 1, stdout: '', stderr: 'No units given\n' });
    });

    it('leaves an identical existing unit alone and prints nothing', async () => {
      await h.file('hello.service', HELLO);
      await h.run(['submit', 'hello.service']);
      expect(await h.run(['submit', 'hello.service'])).to.deep.equal({ code: 0, stdout: '', stderr: '' });
    });

    it('warns when the registry differs from the local file, and keeps the registry version', async () => {
      await h.file('hello.service', HELLO);
      await h.run(['submit', 'hello.service']);
      const before = await hashOf('hello.service');
      await h.file('hello.service', HELLO_V2);
      expect(await h.run(['submit', 'hello.service'])).to.deep.equal({
        code: 0,
        stdout: '',
        stderr:
          'WARNING: Unit hello.service in registry differs from local unit file hello.service. Add --replace to override.\n',
      });
      expect(await hashOf('hello.service')).to.equal(before);
    });

    it('replaces with --replace when the file differs, and says so when it does not', async () => {
      await h.file('hello.service', HELLO);
      await h.run(['submit', 'hello.service']);
      await h.file('hello.service', HELLO_V2);
      expect(await h.run(['submit', '--replace', 'hello.service'])).to.deep.equal({
        code: 0,
        stdout: 'Unit hello.service inactive\n',
        stderr: '',
      });
      // sha1sum of the canonical form of HELLO_V2
      expect(await hashOf('hello.service')).to.equal('789856c5a7cd5c9937e9dc80a0816c55a3f04de8');
      expect(await h.run(['submit', '--replace', 'hello.service'])).to.deep.equal({
        code: 0,
        stdout: 'Found same Unit(hello.service) in Registry, nothing to do\n',
        stderr: '',
      });
    });

    it('refuses to replace a unit in a state submit cannot replace, and exits 1', async () => {
      await h.unit('hello.service', 'launched');
      await h.file('hello.service', HELLO_V2);
      const before = await hashOf('hello.service');
      expect(await h.run(['submit', '--replace', 'hello.service'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr:
          "Warning: can not replace Unit(hello.service) in state 'launched', use the appropriate command\n",
      });
      expect(await hashOf('hello.service')).to.equal(before);
    });

    it('prints the desired state of a global unit, with no trailing space', async () => {
      await h.file('g.service', '[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nGlobal=true\n');
      expect((await h.run(['submit', 'g.service'])).stdout).to.equal('Unit g.service inactive\n');
    });

    it('warns about deprecated options and --sign, and submits anyway', async () => {
      await h.file('old.service', '[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nX-Conflicts=other.service\n');
      const r = await h.run(['submit', '--sign', 'old.service']);
      expect(r.code).to.equal(0);
      expect(r.stdout).to.equal('Unit old.service inactive\n');
      expect(r.stderr).to.contain(
        'WARNING: The signed/verified units feature is DEPRECATED and --sign is ignored.\n',
      );
      expect(r.stderr).to.match(/WARNING: old\.service line 5: \[X-Fleet\] X-Conflicts: .*Conflicts/);
    });
  });

  describe('template instances', () => {
    it('makes an instance from the template file next to the argument', async () => {
      await h.file('units/web@.service', WEB_TEMPLATE);
      expect(await h.run(['submit', 'units/web@8080.service'])).to.deep.equal({
        code: 0,
        stdout: 'Unit web@8080.service inactive\n',
        stderr: '',
      });
      const stored = await h.registry.getUnit('web@8080.service');
      expect(stored?.unit.options).to.deep.equal([
        { section: 'Service', name: 'ExecStart', value: '/usr/bin/web --port %i' },
        { section: 'X-Fleet', name: 'Conflicts', value: 'web@*.service' },
      ]);
      expect(await h.desired('web@.service')).to.equal(undefined);
    });

    it('prefers the template in the registry, and works with no local file at all', async () => {
      await h.file('web@.service', WEB_TEMPLATE);
      await h.run(['submit', 'web@.service']);
      await h.file('other/web@.service', '[Service]\nExecStart=/bin/false\n');
      expect((await h.run(['submit', 'other/web@1.service'])).code).to.equal(0);
      expect(await hashOf('web@1.service')).to.equal(await hashOf('web@.service'));
      const elsewhere = await h.run(['submit', 'web@2'], { cwd: '/' });
      expect(elsewhere).to.deep.equal({ code: 0, stdout: 'Unit web@2.service inactive\n', stderr: '' });
    });

    it('says when the template is nowhere', async () => {
      expect(await h.run(['submit', 'web@1.service'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr:
          'Error creating units: unable to find template Unit(web@.service) in Registry or on filesystem\n',
      });
    });

    it('validates the instance made from a local template, with the template file in problems', async () => {
      await h.file('t/db@.service', '[Service]\nExecStart=/bin/db\n\n[X-Fleet]\nMachineOf=%i\n');
      const r = await h.run(['submit', 't/db@db@1.service']);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/^t\/db@\.service line 5: \[X-Fleet\] MachineOf: /m);
      expect(r.stderr).to.contain(
        'Error creating units: t/db@.service is not a valid unit file (1 problem)\n',
      );
    });

    it('warns when an instance differs from its local template', async () => {
      await h.file('web@.service', WEB_TEMPLATE);
      await h.run(['submit', 'web@1.service']);
      await h.file('web@.service', '[Service]\nExecStart=/usr/bin/web2 --port %i\n');
      expect((await h.run(['submit', 'web@1.service'])).stderr).to.equal(
        'WARNING: Unit web@1.service in registry differs from local template unit file web@1.service. Add --replace to override.\n',
      );
    });

    it('refuses to start a template itself, with the API message', async () => {
      await h.file('web@.service', WEB_TEMPLATE);
      const r = await h.run(['start', 'web@.service']);
      expect(r.code).to.equal(1);
      expect(r.stdout).to.equal('Unit web@.service inactive\n');
      expect(r.stderr).to.equal(
        'Error starting units: API error 400: cannot activate template "web@.service"\n',
      );
    });
  });

  describe('cat', () => {
    it('prints the canonical form: sections grouped, no comments, no trailing newline added', async () => {
      await h.file(
        'messy.service',
        '# comment\n[Unit]\nDescription = Messy\n[Service]\nExecStart=/bin/true\n[Unit]\nAfter=network.target\n',
      );
      await h.run(['submit', 'messy.service']);
      expect(await h.run(['cat', 'messy'])).to.deep.equal({
        code: 0,
        stdout: '[Unit]\nDescription=Messy\nAfter=network.target\n\n[Service]\nExecStart=/bin/true\n',
        stderr: '',
      });
    });

    it("uses fleet's messages for a missing unit and a wrong argument count", async () => {
      expect(await h.run(['cat', 'nope.service'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'Unit nope.service not found\n',
      });
      expect(await h.run(['cat'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'One unit file must be provided\n',
      });
      expect((await h.run(['cat', 'a', 'b'])).stderr).to.equal('One unit file must be provided\n');
    });
  });

  describe('verify', () => {
    it('reports valid files (and instances through their template) without a cluster', async () => {
      await h.file('hello.service', HELLO);
      await h.file('web@.service', WEB_TEMPLATE);
      const r = await h.run(['verify', 'hello.service', 'web@3.service'], {
        env: { FLEETCTL_ENDPOINT: 'unix:///nonexistent/fleet.sock' },
      });
      expect(r).to.deep.equal({
        code: 0,
        stdout:
          'Unit hello.service is valid, hash cf96eb9\n' +
          'Unit web@3.service is valid (from template web@.service), hash ed6341d\n',
        stderr: '',
      });
    });

    it('reports what systemd-analyze verify finds, such as a misspelt key (ExecStrat=)', async () => {
      const file = await h.file('typo.service', '[Service]\nExecStrat=/bin/true\nExecStart=/bin/true\n');
      const r = await h.run(['verify', 'typo.service']);
      expect(r.stderr).to.equal(
        `WARNING: systemd-analyze: ${file}:2: Unknown key 'ExecStrat' in section [Service], ignoring.\n`,
      );
      expect(r.stdout).to.match(/^Unit typo\.service is valid, hash [0-9a-f]{7}\n$/);
    });

    it('prints every problem of every file and exits 1', async () => {
      await h.file('a.service', '[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineID=\nConflict=x\n');
      await h.file('b.service', 'Orphan=1\n[Service\n');
      const r = await h.run(['verify', 'a.service', 'b.service', 'missing.service']);
      expect(r.code).to.equal(1);
      expect(r.stdout).to.equal('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines.filter((l) => l.startsWith('a.service line 4'))).to.have.length(1);
      expect(lines.filter((l) => l.startsWith('a.service line 5'))).to.have.length(1);
      expect(lines.filter((l) => l.startsWith('b.service line'))).to.have.length.greaterThan(0);
      expect(lines.at(-1)).to.equal(
        'Error verifying missing.service: unable to find Unit(missing.service) on filesystem',
      );
    });
  });
});

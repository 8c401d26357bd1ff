import { expect } from 'chai';
import { afterEach, beforeEach, describe, it } from 'mocha';
import { outputCommand, unitOutputHandler, type OutputProgramRunner } from '../../agent/unit-output.js';
import { silentLogger } from '../../lib/logger.js';
import { Harness, M1, M2, RecordingRunner } from './harness.js';

/**
 * status and journal through fleetd's API (the output relay), not ssh: the machines' fleetds are
 * stood in for by the relay's handlers with a program runner that prints what it would run.
 */
describe('fleetctl status and journal through fleetd (no ssh)', () => {
  let h: Harness;
  let ran: { machine: string; program: string; args: readonly string[] }[];
  let ssh: RecordingRunner;

  /** A machine's handler: prints `<machine>: <program> <args>` and exits 3 for status, 0 else. */
  function runnerOn(machine: string): OutputProgramRunner {
    return (program, args, write) => {
      ran.push({ machine, program, args });
      write(`${machine.slice(0, 4)}: ${program} ${args.join(' ')}\n`);
      return Promise.resolve(program === 'systemctl' ? 3 : 0);
    };
  }

  beforeEach(async () => {
    h = await Harness.start();
    ran = [];
    ssh = new RecordingRunner();
    await h.machine(M1, '10.0.0.1');
    await h.machine(M2, '10.0.0.2');
    await h.registry.serveOutput(M1, unitOutputHandler(silentLogger, runnerOn(M1)));
    await h.registry.serveOutput(M2, unitOutputHandler(silentLogger, runnerOn(M2)));
    await h.unit('hello.service', 'launched');
    await h.place('hello.service', M2);
    await h.report('hello.service', M2);
    await h.unit('g.service', 'launched', ['Global=true']);
    await h.report('g.service', M1);
    await h.report('g.service', M2);
  });

  afterEach(async () => {
    await h.close();
  });

  it("runs systemctl status on the unit's machine and passes its exit status on, without ssh", async () => {
    const r = await h.run(['status', 'hello'], { runner: ssh });
    expect(r).to.deep.equal({
      code: 3,
      stdout: 'f0e1: systemctl status --full --no-pager -- hello.service\n',
      stderr: '',
    });
    expect(ssh.calls).to.deep.equal([]);
  });

  it('shows a global unit on every machine that reports it, each under a heading', async () => {
    const r = await h.run(['status', 'g.service'], { runner: ssh });
    expect(r.stdout).to.equal(
      'Unit g.service on a1b2c3d4.../10.0.0.1:\na1b2: systemctl status --full --no-pager -- g.service\n\n' +
        'Unit g.service on f0e1d2c3.../10.0.0.2:\nf0e1: systemctl status --full --no-pager -- g.service\n',
    );
    const j = await h.run(['journal', '--lines', '3', 'g.service'], { runner: ssh });
    expect(j).to.deep.equal({
      code: 0,
      stdout:
        'Unit g.service on a1b2c3d4.../10.0.0.1:\na1b2: journalctl --unit=g.service --no-pager --lines=3 --output=short\n\n' +
        'Unit g.service on f0e1d2c3.../10.0.0.2:\nf0e1: journalctl --unit=g.service --no-pager --lines=3 --output=short\n',
      stderr: '',
    });
    const f = await h.run(['journal', '-f', 'g.service'], { runner: ssh });
    expect(f.stdout.split('\n').sort().join('\n')).to.equal(
      '\n' +
        'a1b2c3d4.../10.0.0.1| a1b2: journalctl --unit=g.service --no-pager --lines=10 --output=short --follow\n' +
        'f0e1d2c3.../10.0.0.2| f0e1: journalctl --unit=g.service --no-pager --lines=10 --output=short --follow',
    );
    expect(ssh.calls).to.deep.equal([]);
  });

  it('passes --lines, --output and --follow to journalctl on the machine', async () => {
    const r = await h.run(['journal', '--lines', '50', '--output=cat', '-f', 'hello.service'], {
      runner: ssh,
    });
    expect(r.code, r.stderr).to.equal(0);
    expect(ran).to.deep.equal([
      {
        machine: M2,
        program: 'journalctl',
        args: ['--unit=hello.service', '--no-pager', '--lines=50', '--output=cat', '--follow'],
      },
    ]);
  });

  it('says which machine does not answer, and exits 1', async () => {
    h.registry.relay.unreachable.add(M2);
    const r = await h.run(['status', 'hello.service'], { runner: ssh });
    expect(r.code).to.equal(1);
    expect(r.stderr).to.contain(`API error 504: machine ${M2} did not answer`);
  });

  it('keeps ssh as a fallback with --ssh', async () => {
    await h.run(['status', '--ssh', 'hello.service'], { runner: ssh });
    expect(ssh.calls.map((c) => c.args.slice(-5))).to.deep.equal([
      ['10.0.0.2', 'systemctl', 'status', '-l', 'hello.service'],
    ]);
    expect(ran).to.deep.equal([]);
  });

  it('refuses output modes and line counts outside the bounds at the API', async () => {
    const r = await h.run(['journal', '--output', 'export', 'hello.service'], { runner: ssh });
    expect(r.code).to.equal(1);
    expect(r.stderr).to.contain('API error 400: output must be one of short');
    const many = await h.run(['journal', '--lines', '1000000', 'hello.service'], { runner: ssh });
    expect(many.stderr).to.contain('API error 400: lines must be a whole number from 0 to 100000');
    expect(ran).to.deep.equal([]);
  });

  describe('what the answering machine runs', () => {
    it('puts the unit name where it cannot be an option, and refuses names systemd refuses', () => {
      expect(outputCommand({ kind: 'status', unit: '-H.service' })).to.deep.equal({
        program: 'systemctl',
        args: ['status', '--full', '--no-pager', '--', '-H.service'],
      });
      for (const unit of ['a b.service', 'x;reboot.service', '$(id).service', 'x', '../x.service'])
        expect(() => outputCommand({ kind: 'status', unit }), unit).to.throw('Invalid unit name');
    });
  });
});

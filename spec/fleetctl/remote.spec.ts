import { readFile, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { describe, it, beforeEach, afterEach } from 'mocha';
import type { CommandRunner } from '../../fleetctl/ssh.js';
import { installFakeSsh } from './fake-ssh.js';
import { Harness, M1, M2, RecordingRunner, sink } from './harness.js';

describe('fleetctl status, journal, ssh and fd-forward (reaching machines)', () => {
  let h: Harness;
  let known: string;

  beforeEach(async () => {
    h = await Harness.start();
    await h.machine(M1, '10.0.0.1');
    await h.machine(M2, '10.0.0.2');
    await h.unit('hello.service', 'launched');
    await h.place('hello.service', M1);
    await h.report('hello.service', M1);
    await h.unit('idle.service');
    await h.unit('g.service', 'launched', ['Global=true']);
    await h.report('g.service', M1);
    await h.report('g.service', M2);
    known = path.join(h.dir, '.fleetctl', 'known_hosts');
  });

  afterEach(async () => {
    await h.close();
  });

  /** The ssh options the default global flags give. */
  function sshTo(ip: string, port = '22'): string[] {
    return [
      '-o',
      'StrictHostKeyChecking=ask',
      '-o',
      `UserKnownHostsFile=${known}`,
      '-o',
      'ConnectTimeout=10',
      '-l',
      'core',
      '-p',
      port,
      '--',
      ip,
    ];
  }

  describe('status', () => {
    it("runs systemctl status -l over ssh on the unit's machine and passes its exit status on", async () => {
      const runner = new RecordingRunner(3);
      expect(await h.run(['status', '--ssh', 'hello'], { runner })).to.deep.equal({
        code: 3,
        stdout: '',
        stderr: '',
      });
      expect(runner.calls).to.deep.equal([
        { command: 'ssh', args: [...sshTo('10.0.0.1'), 'systemctl', 'status', '-l', 'hello.service'] },
      ]);
      expect((await stat(path.dirname(known))).isDirectory()).to.equal(true);
    });

    it('builds the ssh command from the global flags and --ssh-port', async () => {
      const runner = new RecordingRunner();
      const r = await h.run(
        [
          '--ssh-username=ops',
          '--strict-host-key-checking=false',
          '--ssh-timeout',
          '2.5',
          '--known-hosts-file',
          '/tmp/kh',
          'status',
          '--ssh',
          '--ssh-port',
          '2222',
          'hello.service',
        ],
        { runner },
      );
      expect(r.code).to.equal(0);
      expect(runner.calls[0]?.args).to.deep.equal([
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        'UserKnownHostsFile=/tmp/kh',
        '-o',
        'ConnectTimeout=3',
        '-l',
        'ops',
        '-p',
        '2222',
        '--',
        '10.0.0.1',
        'systemctl',
        'status',
        '-l',
        'hello.service',
      ]);
    });

    it('takes the ssh settings from FLEETCTL_* variables too', async () => {
      const runner = new RecordingRunner();
      await h.run(['status', '--ssh', 'hello.service'], {
        runner,
        env: {
          FLEETCTL_SSH_USERNAME: 'admin',
          FLEETCTL_STRICT_HOST_KEY_CHECKING: 'false',
          FLEETCTL_SSH_TIMEOUT: '4',
        },
      });
      expect(runner.calls[0]?.args.slice(0, 8)).to.deep.equal([
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        `UserKnownHostsFile=${known}`,
        '-o',
        'ConnectTimeout=4',
        '-l',
        'admin',
      ]);
    });

    it('runs systemctl directly when the unit runs on this machine', async () => {
      const idFile = path.join(h.dir, 'machine-id');
      await writeFile(idFile, `${M1}\n`);
      const runner = new RecordingRunner();
      await h.run(['status', '--ssh', 'hello.service'], { runner, machineIdFile: idFile });
      expect(runner.calls).to.deep.equal([{ command: 'systemctl', args: ['status', '-l', 'hello.service'] }]);
    });

    it('runs on every machine that reports a global unit, each with a header', async () => {
      const out = sink();
      const runner = new RecordingRunner(0, '● g.service\n', out.stream);
      const r = await h.run(['status', '--ssh', 'g.service'], { runner });
      expect(r.code).to.equal(0);
      expect(r.stdout).to.equal(
        'Unit g.service on a1b2c3d4.../10.0.0.1:\n\nUnit g.service on f0e1d2c3.../10.0.0.2:\n',
      );
      expect(runner.calls.map((c) => c.args[11])).to.deep.equal(['10.0.0.1', '10.0.0.2']);
    });

    it("uses fleet's messages for missing and unloaded units, and exits 1", async () => {
      const runner = new RecordingRunner();
      expect(await h.run(['status', '--ssh', 'nope.service', 'idle.service'], { runner })).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'Unit nope.service does not exist.\nUnit idle.service does not appear to be loaded.\n',
      });
      expect(runner.calls).to.deep.equal([]);
    });

    it('exits 1 when ssh cannot be run at all', async () => {
      const failing: CommandRunner = { run: () => Promise.reject(new Error('spawn ssh ENOENT')) };
      expect(await h.run(['status', '--ssh', 'hello.service'], { runner: failing })).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'Unable to SSH to remote host: cannot run ssh: spawn ssh ENOENT\n',
      });
    });

    it('spawns the system ssh client and shows what the remote systemctl printed', async () => {
      const fake = await installFakeSsh(h.dir);
      const r = await h.run(['status', '--ssh', 'hello.service', 'hello.service'], { env: fake.env });
      expect(r).to.deep.equal({
        code: 3,
        stdout:
          'fake systemctl on remote: status -l hello.service\n\nfake systemctl on remote: status -l hello.service\n',
        stderr: '',
      });
      const log = (await readFile(fake.log, 'utf8')).trim().split('\n');
      const call = [...sshTo('10.0.0.1'), 'systemctl', 'status', '-l', 'hello.service'];
      expect(log.map((l) => JSON.parse(l) as unknown)).to.deep.equal([call, call]);
    });
  });

  describe('journal', () => {
    it('runs journalctl for the unit over ssh with fleet defaults', async () => {
      const runner = new RecordingRunner();
      expect((await h.run(['journal', '--ssh', 'hello.service'], { runner })).code).to.equal(0);
      expect(runner.calls[0]?.args).to.deep.equal([
        ...sshTo('10.0.0.1'),
        'journalctl',
        '--unit',
        'hello.service',
        '--no-pager',
        '-n',
        '10',
        '--output',
        'short',
      ]);
    });

    it('passes --lines, --output, --sudo and -f/--follow/--f', async () => {
      for (const follow of ['-f', '--follow', '--f']) {
        const runner = new RecordingRunner();
        await h.run(
          ['journal', '--ssh', '--lines', '50', '--sudo', '--output=json', follow, 'hello.service'],
          {
            runner,
          },
        );
        expect(runner.calls[0]?.args.slice(12), follow).to.deep.equal([
          'sudo',
          'journalctl',
          '--unit',
          'hello.service',
          '--no-pager',
          '-n',
          '50',
          '--output',
          'json',
          '-f',
        ]);
      }
    });

    it("uses fleet's messages for a wrong argument count, missing, global and inactive units", async () => {
      const cases: [string[], string][] = [
        [[], 'One unit file must be provided.\n'],
        [['a', 'b'], 'One unit file must be provided.\n'],
        [['nope'], 'Unit nope.service does not exist.\n'],
        [['g.service'], 'Unable to retrieve journal of global unit g.service over ssh: leave out --ssh.\n'],
        [['idle.service'], 'Unit idle.service does not appear to be running.\n'],
      ];
      for (const [args, stderr] of cases) {
        expect(await h.run(['journal', '--ssh', ...args]), args.join(' ')).to.deep.equal({
          code: 1,
          stdout: '',
          stderr,
        });
      }
    });
  });

  describe('ssh', () => {
    it('opens a shell on a machine given by ID prefix or by unit', async () => {
      for (const args of [['a1b2'], ['hello.service'], ['-m', 'a1b2c3'], ['--unit', 'hello']]) {
        const runner = new RecordingRunner();
        expect((await h.run(['ssh', ...args], { runner })).code, args.join(' ')).to.equal(0);
        expect(runner.calls, args.join(' ')).to.deep.equal([{ command: 'ssh', args: sshTo('10.0.0.1') }]);
      }
    });

    it('runs the command after --, forwards the agent with -A or --A, and passes the exit status on', async () => {
      for (const agent of ['-A', '--A', '--forward-agent']) {
        const runner = new RecordingRunner(7);
        const r = await h.run(['ssh', agent, '--ssh-port', '2022', 'f0e1', '--', 'ls', '-l', '/run'], {
          runner,
        });
        expect(r.code).to.equal(7);
        expect(runner.calls[0]?.args).to.deep.equal([
          ...sshTo('10.0.0.2', '2022').slice(0, -2),
          '-A',
          '--',
          '10.0.0.2',
          'ls',
          '-l',
          '/run',
        ]);
      }
    });

    it("refuses ambiguous, unknown, global and doubly given targets with fleet's messages", async () => {
      await h.unit('a1b2.service', 'launched');
      await h.place('a1b2.service', M2);
      const cases: [string[], string][] = [
        [
          ['a1b2'],
          'Unable to proceed: ambiguous argument, both machine and unit found for `a1b2`.\n' +
            'Please use flag `-m` or `-u` to refine the search\n',
        ],
        [['zzz'], 'Unable to proceed: could not find matching unit or machine\n'],
        [['idle.service'], 'Unable to proceed: could not find matching unit or machine\n'],
        [['g.service'], 'Unable to proceed: global units unsupported\n'],
        [['-m', 'a', '-u', 'b'], 'Both machine and unit flags provided, please specify only one.\n'],
        [[], 'Provide one machine or unit.\n'],
      ];
      for (const [args, stderr] of cases) {
        const runner = new RecordingRunner();
        expect(await h.run(['ssh', ...args], { runner }), args.join(' ')).to.deep.equal({
          code: 1,
          stdout: '',
          stderr,
        });
        expect(runner.calls).to.deep.equal([]);
      }
    });
  });

  describe('fd-forward', () => {
    it('carries stdin to the socket and the socket to stdout', async () => {
      const stdin = new PassThrough();
      const running = h.run(['fd-forward', h.socket], { stdin });
      stdin.end('GET /fleet/v1/machines HTTP/1.1\r\nHost: fleet\r\nConnection: close\r\n\r\n');
      const r = await running;
      expect(r.code).to.equal(0);
      expect(r.stdout).to.match(/^HTTP\/1\.1 200 /);
      expect(r.stdout).to.contain('"primaryIP":"10.0.0.2"');
    });

    it('exits 1 when the socket cannot be dialled (fleet exited 0) or the arguments are wrong', async () => {
      const missing = path.join(h.dir, 'missing.sock');
      expect(await h.run(['fd-forward', missing])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: `Failed dialing remote address: connect ENOENT ${missing}\n`,
      });
      expect(await h.run(['fd-forward'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'Provide a single argument\n',
      });
    });
  });
});

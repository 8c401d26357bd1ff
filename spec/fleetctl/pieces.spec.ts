import { expect } from 'chai';
import { describe, it } from 'mocha';
import { Command } from 'commander';
import { blockAttempts, pollUntil } from '../../fleetctl/blocking.js';
import { normalizeArgv } from '../../fleetctl/argv.js';
import { Context } from '../../fleetctl/context.js';
import { parseFields } from '../../fleetctl/fields.js';
import { parseGoBool, parseSeconds } from '../../fleetctl/global-options.js';
import { machineFullLegend, machineIdLegend } from '../../fleetctl/machines.js';
import { buildProgram } from '../../fleetctl/program.js';
import { shellQuote, splitHostPort, sshArgs } from '../../fleetctl/ssh.js';
import { formatTable } from '../../fleetctl/table.js';
import { parseEndpoint } from '../../fleetctl/transport.js';
import { FAST } from './harness.js';

describe('fleetctl pieces', () => {
  describe('formatTable (Go tabwriter, TAB padding)', () => {
    it("reproduces fleet's observed list-machines bytes", () => {
      expect(
        formatTable([
          ['MACHINE', 'IP', 'METADATA'],
          ['m1000000...', '127.0.0.11', 'hostname=smoke1,region=r1'],
        ]),
      ).to.equal('MACHINE\t\tIP\t\tMETADATA\nm1000000...\t127.0.0.11\thostname=smoke1,region=r1\n');
    });

    it('rounds a column to the next multiple of 8 after the longest cell plus one', () => {
      const cases: [string, string[][], string][] = [
        ['7 characters fit one stop', [['1234567', 'x']], '1234567\tx\n'],
        [
          '8 characters widen the column to 16',
          [
            ['12345678', 'x'],
            ['a', 'y'],
          ],
          '12345678\tx\na\t\ty\n',
        ],
        ['15 characters need two', [['123456789012345', 'x']], '123456789012345\tx\n'],
        [
          '16 characters widen the column to 24',
          [
            ['1234567890123456', 'x'],
            ['a', 'y'],
          ],
          '1234567890123456\tx\na\t\t\ty\n',
        ],
        [
          'shorter cells fill with more tabs',
          [
            ['a', 'x'],
            ['1234567890', 'y'],
          ],
          'a\t\tx\n1234567890\ty\n',
        ],
      ];
      for (const [name, rows, want] of cases) expect(formatTable(rows), name).to.equal(want);
    });

    it('counts code points, not bytes', () => {
      expect(formatTable([['ééééééé', 'x']])).to.equal('ééééééé\tx\n');
    });

    it('prints only the header when there are no rows', () => {
      expect(formatTable([['UNIT', 'MACHINE', 'ACTIVE', 'SUB']])).to.equal('UNIT\tMACHINE\tACTIVE\tSUB\n');
    });
  });

  describe('blockAttempts (fleet getBlockAttempts table)', () => {
    const cases: [boolean, number, number][] = [
      [true, 0, -1],
      [true, 5, -1],
      [false, 0, 0],
      [false, -1, 0],
      [false, 9999, 9999],
    ];
    for (const [noBlock, attempts, want] of cases) {
      it(`gives ${want} for noBlock=${noBlock}, attempts=${attempts}`, () => {
        expect(blockAttempts(noBlock, attempts)).to.equal(want);
      });
    }
  });

  describe('pollUntil', () => {
    it('gives up after the attempts and returns the last reason', async () => {
      let polls = 0;
      const result = await pollUntil(
        () => {
          polls++;
          return Promise.resolve({ done: false, why: `poll ${polls}` });
        },
        2,
        FAST,
      );
      expect(result).to.deep.equal({ ok: false, timedOut: true, why: `poll ${polls}` });
      expect(polls).to.be.greaterThan(5);
    });

    it('ends at once on a fatal poll and turns a thrown error into a reason', async () => {
      expect(
        await pollUntil(() => Promise.resolve({ done: false, fatal: true, why: 'gone' }), 0, FAST),
      ).to.deep.equal({ ok: false, timedOut: false, why: 'gone' });
      expect(await pollUntil(() => Promise.reject(new Error('boom')), 0, FAST)).to.deep.equal({
        ok: false,
        timedOut: false,
        why: 'boom',
      });
    });
  });

  describe('parseEndpoint', () => {
    it('reads unix, file, http and https endpoints', () => {
      expect(parseEndpoint('unix:///var/run/fleet.sock').endpoint).to.include({
        kind: 'unix',
        socketPath: '/var/run/fleet.sock',
      });
      expect(parseEndpoint('file:///tmp/f.sock').endpoint).to.include({
        kind: 'unix',
        socketPath: '/tmp/f.sock',
      });
      expect(parseEndpoint('http://127.0.0.1:49153').endpoint.kind).to.equal('http');
      expect(parseEndpoint('https://fleet.example:443').endpoint.kind).to.equal('https');
    });

    it('uses the first of several endpoints and warns as fleet did', () => {
      const parsed = parseEndpoint('http://a:1,http://b:2');
      expect(parsed.endpoint.display).to.equal('http://a:1');
      expect(parsed.warning).to.equal('multiple endpoints provided but only the first (http://a:1) is used');
    });

    it('rejects endpoints without a scheme, with a host part on unix, or with another scheme', () => {
      expect(() => parseEndpoint('127.0.0.1:5002')).to.throw(/URL scheme undefined/);
      expect(() => parseEndpoint('unix://var/run/fleet.sock')).to.throw(
        /unable to connect to host "var" with scheme "unix"/,
      );
      expect(() => parseEndpoint('ftp://x')).to.throw(/unsupported URL scheme "ftp"/);
    });
  });

  describe('flag values', () => {
    it("parses booleans as Go's strconv.ParseBool", () => {
      expect(['1', 't', 'T', 'TRUE', 'true', 'True'].map(parseGoBool)).to.deep.equal(Array(6).fill(true));
      expect(['0', 'f', 'F', 'FALSE', 'false', 'False'].map(parseGoBool)).to.deep.equal(Array(6).fill(false));
      expect(['yes', '', 'tRuE'].map(parseGoBool)).to.deep.equal([undefined, undefined, undefined]);
    });

    it('parses seconds as non-negative floats', () => {
      expect(['10', '1.5', '.5', '1e1'].map(parseSeconds)).to.deep.equal([10, 1.5, 0.5, 10]);
      expect(['', 'abc', '-1', '1s'].map(parseSeconds)).to.deep.equal([
        undefined,
        undefined,
        undefined,
        undefined,
      ]);
    });

    it("splits --fields with fleet's messages", () => {
      expect(parseFields('unit,machine', ['unit', 'machine'])).to.deep.equal(['unit', 'machine']);
      expect(() => parseFields('', ['unit'])).to.throw('Must define output format');
      expect(() => parseFields('unit,bogus', ['unit'])).to.throw('Invalid key in output format: "bogus"');
    });
  });

  describe('machine legends', () => {
    it('shows 8 characters and ..., the full ID with --full, and the IP when known', () => {
      const id = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
      expect(machineIdLegend(id, false)).to.equal('a1b2c3d4...');
      expect(machineIdLegend(id, true)).to.equal(id);
      expect(machineFullLegend(id, { id, primaryIP: '10.0.0.1', metadata: {} }, false)).to.equal(
        'a1b2c3d4.../10.0.0.1',
      );
      expect(machineFullLegend(id, undefined, false)).to.equal('a1b2c3d4...');
    });
  });

  describe('normalizeArgv', () => {
    const program = (): Command => {
      const ctx = new Context();
      const p = buildProgram(ctx);
      ctx.attach(p);
      return p;
    };

    it('expands unique command prefixes, also after global flags with values', () => {
      expect(normalizeArgv(['list-m'], program())).to.deep.equal(['list-machines']);
      expect(normalizeArgv(['--endpoint', 'list', 'list-unit-f', '--full'], program())).to.deep.equal([
        '--endpoint',
        'list',
        'list-unit-files',
        '--full',
      ]);
      expect(() => normalizeArgv(['list'], program())).to.throw(
        'ambiguous command "list": could be list-machines, list-unit-files, list-units',
      );
    });

    it('maps --flag=bool onto the flag or its twin, and --h onto --help', () => {
      expect(normalizeArgv(['--strict-host-key-checking=false', 'ssh', 'x'], program())).to.deep.equal([
        '--no-strict-host-key-checking',
        'ssh',
        'x',
      ]);
      expect(normalizeArgv(['start', '--no-block=false', '--replace=1', 'a'], program())).to.deep.equal([
        'start',
        '--block',
        '--replace',
        'a',
      ]);
      expect(normalizeArgv(['--h'], program())).to.deep.equal(['--help']);
      expect(() => normalizeArgv(['list-units', '--full=maybe'], program())).to.throw(
        'invalid argument "maybe" for "--full" flag',
      );
    });

    it('leaves everything after -- alone', () => {
      expect(normalizeArgv(['ssh', 'm', '--', 'ls', '--full=x', '--h'], program())).to.deep.equal([
        'ssh',
        'm',
        '--',
        'ls',
        '--full=x',
        '--h',
      ]);
    });
  });

  describe('ssh command lines', () => {
    const globals = {
      endpoint: '',
      driver: 'API',
      etcdKeyPrefix: '',
      keyFile: '',
      certFile: '',
      caFile: '',
      knownHostsFile: '/home/u/.fleetctl/known_hosts',
      strictHostKeyChecking: true,
      sshTimeout: 2.5,
      tunnel: '',
      requestTimeout: 3,
      sshUsername: 'core',
      debug: false,
      experimentalApi: true,
    };

    it('carries host-key checking, known hosts, timeout, user, port, agent and tunnel', () => {
      expect(sshArgs(globals, { host: '10.0.0.1', port: 22 }, ['uptime'])).to.deep.equal([
        '-o',
        'StrictHostKeyChecking=ask',
        '-o',
        'UserKnownHostsFile=/home/u/.fleetctl/known_hosts',
        '-o',
        'ConnectTimeout=3',
        '-l',
        'core',
        '-p',
        '22',
        '--',
        '10.0.0.1',
        'uptime',
      ]);
      const loose = { ...globals, strictHostKeyChecking: false, tunnel: 'bastion', sshUsername: 'ops' };
      expect(sshArgs(loose, { host: '10.0.0.2', port: 2222, forwardAgent: true })).to.deep.equal([
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        'UserKnownHostsFile=/home/u/.fleetctl/known_hosts',
        '-o',
        'ConnectTimeout=3',
        '-l',
        'ops',
        '-p',
        '2222',
        '-J',
        'ops@bastion:22',
        '-A',
        '--',
        '10.0.0.2',
      ]);
    });

    it('splits host:port with port 22 by default and quotes only what needs it', () => {
      expect(splitHostPort('10.0.0.1')).to.deep.equal({ host: '10.0.0.1', port: 22 });
      expect(splitHostPort('10.0.0.1:2222')).to.deep.equal({ host: '10.0.0.1', port: 2222 });
      expect(splitHostPort('[::1]:23')).to.deep.equal({ host: '::1', port: 23 });
      expect(shellQuote('web@1.service')).to.equal('web@1.service');
      expect(shellQuote('yes@no\\.service')).to.equal("'yes@no\\.service'");
      expect(shellQuote("it's")).to.equal("'it'\\''s'");
    });
  });
});

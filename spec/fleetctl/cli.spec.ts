import { mkdir, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { expect } from 'chai';
import { describe, it, beforeEach, afterEach } from 'mocha';
import { silentLogger } from '../../lib/logger.js';
import { VERSION } from '../../lib/version.js';
import { ApiServer } from '../../fleetd/api/server.js';
import { Context } from '../../fleetctl/context.js';
import { GLOBAL_FLAGS } from '../../fleetctl/global-options.js';
import { buildProgram } from '../../fleetctl/program.js';
import { createTestPki } from '../helpers/test-pki.js';
import { Harness, M1 } from './harness.js';

const MACHINES = 'MACHINE\t\tIP\t\tMETADATA\na1b2c3d4...\t10.0.0.1\t-\n';

describe('fleetctl command line: help, version, flags, environment, endpoints', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.start();
    await h.machine(M1, '10.0.0.1');
  });

  afterEach(async () => {
    await h.close();
  });

  describe('version and help', () => {
    it('prints "fleetctl version <v>" for version, --version and -v', async () => {
      for (const args of [['version'], ['--version'], ['-v']]) {
        expect(await h.run(args), args.join(' ')).to.deep.equal({
          code: 0,
          stdout: `fleetctl version ${VERSION}\n`,
          stderr: '',
        });
      }
    });

    it('prints the same help for no arguments, help, --help, -h and --h, listing every command and global flag', async () => {
      const texts = new Set<string>();
      for (const args of [[], ['help'], ['--help'], ['-h'], ['--h']]) {
        const r = await h.run(args);
        expect(r.code, args.join(' ')).to.equal(0);
        expect(r.stderr).to.equal('');
        texts.add(r.stdout);
      }
      expect(texts.size).to.equal(1);
      const [help = ''] = texts;
      expect(help).to.match(
        /^NAME:\n\tfleetctl - fleetctl is a command-line interface to fleet, the cluster-wide CoreOS init system\.\n\nUSAGE:\n/,
      );
      expect(help).to.contain(`\nVERSION:\n\t${VERSION}\n`);
      const commands = [
        'cat',
        'completion',
        'destroy',
        'drain',
        'events',
        'fd-forward',
        'help',
        'journal',
        'list-machines',
        'list-unit-files',
        'list-units',
        'load',
        'restart',
        'ssh',
        'start',
        'status',
        'stop',
        'submit',
        'undrain',
        'unload',
        'verify',
        'version',
      ];
      const listed = /COMMANDS:\n((?:\t.*\n)+)/.exec(help)?.[1] ?? '';
      expect(
        listed
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split('\t')[1]),
      ).to.deep.equal(commands);
      for (const g of GLOBAL_FLAGS) expect(help).to.contain(`\t--${g.flag}=${g.display}\t`);
    });

    it('shows one command the same way for help CMD, help PREFIX and CMD --help', async () => {
      const a = await h.run(['help', 'start']);
      expect((await h.run(['help', 'star'])).stdout).to.equal(a.stdout);
      expect((await h.run(['start', '--help'])).stdout).to.equal(a.stdout);
      expect((await h.run(['start', '-h'])).stdout).to.equal(a.stdout);
      expect(a.stdout).to.match(/^NAME:\n\tfleetctl start - Instruct systemd to start one or more units/);
      expect(a.stdout).to.contain('\nUSAGE:\n\tfleetctl start [--no-block|--block-attempts=N] UNIT...\n');
      expect(a.stdout).to.contain('\nDESCRIPTION:\n\tStart one or many units on the cluster.');
      expect(a.stdout).to.match(/\nOPTIONS:\n\t--block-attempts=0\t+Wait until/);
      expect(a.stdout).to.contain('\t--no-block=false\t');
      // The global options are shown once, in `fleetctl help`, not in every command's help.
      expect(a.stdout).not.to.contain('GLOBAL OPTIONS:\n');
      expect(a.stdout).not.to.contain('--ca-file');
      expect(a.stdout).to.contain('\nGLOBAL OPTIONS: see "fleetctl help".\n');
      expect(a.stdout.split('\n').length, a.stdout).to.be.below(45);
    });

    it("lists every command's options in its help, short flags included", async () => {
      const ctx = new Context();
      const program = buildProgram(ctx);
      for (const cmd of program.commands) {
        const r = await h.run(['help', cmd.name()]);
        expect(r.code, cmd.name()).to.equal(0);
        for (const o of cmd.options.filter((x) => !x.hidden && x.long !== undefined)) {
          const term = o.short === undefined ? `\t${o.long ?? ''}=` : `\t${o.short}, ${o.long ?? ''}=`;
          expect(r.stdout, `${cmd.name()} ${o.flags}`).to.contain(term);
        }
      }
      expect((await h.run(['help', 'list-units'])).stdout).to.contain('\t-l, --full=false\t');
      expect((await h.run(['help', 'journal'])).stdout).to.contain('\t-f, --follow=false\t');
      expect((await h.run(['help', 'ssh'])).stdout).to.contain('\t-A, --forward-agent=false\t');
    });

    it('exits 1 for an unknown help topic, an unknown command and an ambiguous prefix', async () => {
      expect(await h.run(['help', 'bogus'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'Unknown help topic "bogus". Run \'fleetctl help\' for usage.\n',
      });
      expect(await h.run(['bogus'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'Error: unknown command "bogus" for "fleetctl"\nRun \'fleetctl help\' for usage.\n',
      });
      expect(await h.run(['list'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'Error: ambiguous command "list": could be list-machines, list-unit-files, list-units\n',
      });
    });
  });

  describe('parsing', () => {
    it('runs a command from a unique prefix, as cobra did', async () => {
      expect(await h.run(['list-m'])).to.deep.equal({ code: 0, stdout: MACHINES, stderr: '' });
    });

    it('exits 1 for unknown flags and bad flag values (fleet exited 0)', async () => {
      expect(await h.run(['list-units', '--bogus'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: "Error: unknown option '--bogus'\nRun 'fleetctl help list-units' for usage.\n",
      });
      expect(await h.run(['journal', '--lines', 'many', 'x'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr:
          "Error: option '--lines <N>' argument 'many' is invalid. Not an integer.\nRun 'fleetctl help journal' for usage.\n",
      });
      expect((await h.run(['--ssh-timeout', 'soon', 'list-machines'])).code).to.equal(1);
      expect(await h.run(['list-units', '--full=maybe'])).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'Error: invalid argument "maybe" for "--full" flag: not a boolean (use true or false)\n',
      });
    });

    it('accepts global flags before and after the command, and --flag=value forms', async () => {
      const bad = `unix://${h.dir}/none.sock`;
      const env = { FLEETCTL_ENDPOINT: bad };
      expect((await h.run(['--endpoint', h.endpoint, 'list-machines'], { env })).stdout).to.equal(MACHINES);
      expect((await h.run(['list-machines', `--endpoint=${h.endpoint}`], { env })).stdout).to.equal(MACHINES);
    });

    it('exits 1 with "No units given" for unit commands without units (fleet exited 0)', async () => {
      for (const cmd of [
        'submit',
        'load',
        'start',
        'stop',
        'unload',
        'destroy',
        'restart',
        'status',
        'verify',
      ]) {
        expect(await h.run([cmd]), cmd).to.deep.equal({ code: 1, stdout: '', stderr: 'No units given\n' });
      }
    });
  });

  describe('environment variables', () => {
    it('takes FLEETCTL_* values, lets flags win, and ignores empty ones', async () => {
      // The harness passes FLEETCTL_ENDPOINT; a flag overrides it.
      const r = await h.run(['--endpoint', `unix://${h.dir}/none.sock`, 'list-machines']);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.contain(`cannot reach fleetd at unix://${h.dir}/none.sock`);
      const empty = await h.run(['list-machines'], { env: { FLEETCTL_ENDPOINT: '' } });
      expect(empty.stderr).to.contain('cannot reach fleetd at unix:///var/run/fleet.sock');
    });

    it('turns debug output on with --debug or FLEETCTL_DEBUG, and off with --debug=false', async () => {
      const request = `DEBUG: HTTP GET ${h.endpoint}/fleet/v1/machines?alt=json\n`;
      expect((await h.run(['--debug', 'list-machines'])).stderr).to.equal(request);
      expect((await h.run(['list-machines'], { env: { FLEETCTL_DEBUG: 'true' } })).stderr).to.equal(request);
      expect(
        (await h.run(['list-machines', '--debug=false'], { env: { FLEETCTL_DEBUG: '1' } })).stderr,
      ).to.equal('');
    });

    it('rejects unreadable values with the variable name', async () => {
      expect(await h.run(['list-machines'], { env: { FLEETCTL_DEBUG: 'maybe' } })).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: 'Error: invalid value "maybe" for FLEETCTL_DEBUG: not a boolean\n',
      });
      expect((await h.run(['list-machines'], { env: { FLEETCTL_REQUEST_TIMEOUT: 'x' } })).stderr).to.equal(
        'Error: invalid value "x" for FLEETCTL_REQUEST_TIMEOUT: not a number of seconds\n',
      );
    });

    it('reads the driver from FLEETCTL_DRIVER, refusing etcd with a clear message', async () => {
      const etcd =
        "Error: Unable to initialize client: the etcd driver is not supported by fleet-ts; fleetctl talks to fleetd's " +
        'API only (use --driver=API, the default, with --endpoint)\n';
      expect(await h.run(['list-machines'], { env: { FLEETCTL_DRIVER: 'etcd' } })).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: etcd,
      });
      expect((await h.run(['--driver=etcd', 'list-units'])).stderr).to.equal(etcd);
      expect(
        await h.run(['--driver', 'API', 'list-machines'], { env: { FLEETCTL_DRIVER: 'etcd' } }),
      ).to.deep.equal({
        code: 0,
        stdout: MACHINES,
        stderr: '',
      });
      expect((await h.run(['--driver', 'bogus', 'list-machines'])).stderr).to.equal(
        'Error: Unable to initialize client: unrecognized driver "bogus"\n',
      );
    });
  });

  describe('endpoints and requests', () => {
    it('refuses endpoints it cannot use, naming them', async () => {
      expect((await h.run(['--endpoint', '127.0.0.1:5002', 'list-units'])).stderr).to.equal(
        'Error: Unable to initialize client: URL scheme undefined in endpoint "127.0.0.1:5002": use ' +
          'unix:///path/to/socket or http(s)://host:port\n',
      );
      const relative = await h.run(['--endpoint', 'unix://var/run/fleet.sock', 'list-units']);
      expect(relative.code).to.equal(1);
      expect(relative.stderr).to.contain('unable to connect to host "var" with scheme "unix"');
    });

    it('says for every command that fleetd cannot be reached, naming the endpoint, and exits 1', async () => {
      await h.file('x.service', '[Service]\nExecStart=/bin/true\n');
      const endpoint = `unix://${h.dir}/none.sock`;
      const commands = [
        ['submit', 'x.service'],
        ['load', 'x.service'],
        ['start', 'x.service'],
        ['stop', 'x.service'],
        ['unload', 'x.service'],
        ['destroy', 'x.service'],
        ['restart', 'x.service'],
        ['status', 'x.service'],
        ['journal', 'x.service'],
        ['cat', 'x.service'],
        ['ssh', 'x.service'],
        ['list-units'],
        ['list-unit-files'],
        ['list-machines'],
      ];
      for (const args of commands) {
        const r = await h.run(args, { env: { FLEETCTL_ENDPOINT: endpoint } });
        expect(r.code, args[0]).to.equal(1);
        expect(r.stderr, args[0]).to.contain(
          `cannot reach fleetd at ${endpoint} (connect ENOENT ${h.dir}/none.sock); is fleetd running?`,
        );
        expect(r.stderr, args[0]).to.match(/^(Error|Unable to proceed: )/);
      }
    });

    it('uses only the first of several endpoints, with a warning', async () => {
      expect(await h.run(['--endpoint', `${h.endpoint},http://10.9.9.9:1`, 'list-machines'])).to.deep.equal({
        code: 0,
        stdout: MACHINES,
        stderr: `WARNING: multiple endpoints provided but only the first (${h.endpoint}) is used\n`,
      });
    });

    it('gives up on a fleetd that does not answer after --request-timeout', async () => {
      const silent = path.join(h.dir, 'silent.sock');
      const sockets = new Set<net.Socket>();
      const server = net.createServer((s) => sockets.add(s));
      await new Promise<void>((resolve) => server.listen(silent, resolve));
      try {
        const endpoint = `unix://${silent}`;
        const r = await h.run(['--request-timeout', '0.2', 'list-machines'], {
          env: { FLEETCTL_ENDPOINT: endpoint },
        });
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain(
          `Error retrieving list of active machines from fleet API (cannot reach fleetd at ${endpoint} ` +
            '(GET /fleet/v1/machines?alt=json timed out after 0.2s, see --request-timeout); is fleetd running?)\n',
        );
        const viaEnv = await h.run(['list-units'], {
          env: { FLEETCTL_ENDPOINT: endpoint, FLEETCTL_REQUEST_TIMEOUT: '0.1' },
        });
        expect(viaEnv.stderr).to.contain('timed out after 0.1s');
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => {
          server.close(() => {
            resolve();
          });
        });
      }
    });

    it('talks plain HTTP to a TCP endpoint', async () => {
      const { port } = await h.server.listenTcp({
        host: '127.0.0.1',
        port: 0,
        allowPlainHttpOnLoopback: true,
      });
      expect(await h.run(['--endpoint', `http://127.0.0.1:${port}`, 'list-machines'])).to.deep.equal({
        code: 0,
        stdout: MACHINES,
        stderr: '',
      });
    });

    it('talks HTTPS with --ca-file, --cert-file and --key-file (or their deprecated aliases)', async () => {
      const pkiDir = path.join(h.dir, 'pki');
      await mkdir(pkiDir);
      const pki = await createTestPki(pkiDir);
      const server = new ApiServer({ registry: h.registry, logger: silentLogger });
      const { port } = await server.listenTcp({
        host: '127.0.0.1',
        port: 0,
        tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert },
      });
      try {
        const endpoint = `https://127.0.0.1:${port}`;
        const files = {
          ca: path.join(pkiDir, 'ca.crt'),
          cert: path.join(pkiDir, 'client.crt'),
          key: path.join(pkiDir, 'client.key'),
        };
        const tls = ['--ca-file', files.ca, '--cert-file', files.cert, '--key-file', files.key];
        expect(await h.run(['--endpoint', endpoint, ...tls, 'list-machines'])).to.deep.equal({
          code: 0,
          stdout: MACHINES,
          stderr: '',
        });
        const aliases = [
          '--etcd-cafile',
          files.ca,
          '--etcd-certfile',
          files.cert,
          '--etcd-keyfile',
          files.key,
        ];
        expect((await h.run(['--endpoint', endpoint, ...aliases, 'list-machines'])).stdout).to.equal(
          MACHINES,
        );
        const env = {
          FLEETCTL_ENDPOINT: endpoint,
          FLEETCTL_CA_FILE: files.ca,
          FLEETCTL_CERT_FILE: files.cert,
          FLEETCTL_KEY_FILE: files.key,
        };
        expect((await h.run(['list-machines'], { env })).stdout).to.equal(MACHINES);
        const noClientCert = await h.run(['--endpoint', endpoint, '--ca-file', files.ca, 'list-machines']);
        expect(noClientCert.code).to.equal(1);
        expect(noClientCert.stderr).to.contain(`cannot reach fleetd at ${endpoint}`);
        await writeFile(path.join(pkiDir, 'empty'), '');
        expect(
          (await h.run(['--endpoint', endpoint, '--ca-file', path.join(pkiDir, 'missing.crt'), 'list-units']))
            .stderr,
        ).to.match(/^Error: Unable to initialize client: cannot read --ca-file .*missing\.crt: ENOENT/);
      } finally {
        await server.close();
      }
    });
  });
});

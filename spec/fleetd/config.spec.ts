import { expect } from 'chai';
import { describe, it } from 'mocha';

import { parseCommandLine } from '../../fleetd/config-command-line.js';
import { describeSource, formatNotice } from '../../fleetd/config-notice.js';
import {
  buildConfig,
  diffConfig,
  type ConfigResult,
  type Environment,
  type FleetdConfig,
} from '../../fleetd/config.js';
import {
  DEPRECATED_OPTIONS,
  OPTION_LIST,
  OPTIONS_BY_NAME,
  envName,
  flagName,
} from '../../fleetd/config-options.js';
import { usageText } from '../../fleetd/config-usage.js';

const FILE = '/etc/fleet/fleet.conf';

interface Input {
  readonly file?: string;
  readonly env?: Environment;
  readonly argv?: readonly string[];
}

function build(input: Input = {}): ConfigResult {
  return buildConfig({
    argv: input.argv ?? [],
    env: input.env ?? {},
    ...(input.file === undefined ? {} : { file: { path: FILE, text: input.file } }),
  });
}

function config(input: Input = {}): FleetdConfig {
  const r = build(input);
  if (!r.ok) throw new Error(`expected a valid configuration: ${r.problems.map(formatNotice).join('; ')}`);
  return r.config;
}

function problems(input: Input): string[] {
  const r = build(input);
  if (r.ok) throw new Error('expected problems, got a valid configuration');
  return r.problems.map(formatNotice);
}

function warnings(input: Input): string[] {
  const r = build(input);
  if (!r.ok) throw new Error(`expected a valid configuration: ${r.problems.map(formatNotice).join('; ')}`);
  return r.warnings.map(formatNotice);
}

/** The value of an option (by fleet.conf name) in a configuration. */
function valueOf(c: FleetdConfig, option: string): unknown {
  const spec = OPTIONS_BY_NAME.get(option);
  if (spec === undefined) throw new Error(`no option ${option}`);
  return c[spec.key];
}

/**
 * Per option: values that parse (with what they mean) and values that do not (with a fragment of
 * why). `with` is what else must be set for the value to be usable (paired options).
 */
interface OptionCases {
  readonly option: string;
  readonly good: readonly (readonly [string, unknown])[];
  readonly bad: readonly (readonly [string, string])[];
  readonly with?: readonly string[];
}

const TLS_API = [
  '--api-tcp=10.0.0.1:4001',
  '--api-tls-cert=/c.pem',
  '--api-tls-key=/k.pem',
  '--api-tls-ca=/ca.pem',
];

const CASES: readonly OptionCases[] = [
  {
    option: 'etcd_servers',
    good: [
      ['http://10.0.0.1:2379', ['http://10.0.0.1:2379']],
      ['http://a:2379,http://b:2379', ['http://a:2379', 'http://b:2379']],
      ['["http://a:2379", "http://b:2379"]', ['http://a:2379', 'http://b:2379']],
    ],
    bad: [
      ['', 'needs at least one URL'],
      ['10.0.0.1:2379', 'has no scheme; write http://10.0.0.1:2379'],
      ['ftp://a:21', 'the scheme must be http or https'],
      ['http://a', 'has no port'],
    ],
  },
  {
    option: 'etcd_key_prefix',
    good: [
      ['/fleet-ts/', '/fleet-ts/'],
      ['/cluster-a', '/cluster-a/'],
    ],
    bad: [['fleet/', 'must start with /']],
  },
  {
    option: 'etcd_keyfile',
    good: [['/etc/fleet/client-key.pem', '/etc/fleet/client-key.pem']],
    bad: [['client-key.pem', 'is not an absolute path']],
    with: ['--etcd-certfile=/etc/fleet/client.pem', '--etcd-servers=https://a:2379'],
  },
  {
    option: 'etcd_certfile',
    good: [['/etc/fleet/client.pem', '/etc/fleet/client.pem']],
    bad: [['client.pem', 'is not an absolute path']],
    with: ['--etcd-keyfile=/etc/fleet/client-key.pem', '--etcd-servers=https://a:2379'],
  },
  {
    option: 'etcd_cafile',
    good: [
      ['/etc/fleet/ca.pem', '/etc/fleet/ca.pem'],
      ['', ''],
    ],
    bad: [['ca.pem', 'is not an absolute path']],
    with: ['--etcd-servers=https://a:2379'],
  },
  {
    option: 'etcd_request_timeout',
    good: [
      ['1.0', 1000],
      ['0.5', 500],
      ['3', 3000],
    ],
    bad: [
      ['1s', 'without a unit'],
      ['0', 'between 0.1 and 60 seconds'],
      ['61', 'between 0.1 and 60 seconds'],
    ],
  },
  {
    option: 'public_ip',
    good: [
      ['10.250.0.10', '10.250.0.10'],
      ['fd00::1', 'fd00::1'],
      ['', ''],
    ],
    bad: [['node1.example', 'is not an IPv4 or IPv6 address']],
  },
  {
    option: 'metadata',
    good: [
      ['region=us-east,disk=ssd', { region: 'us-east', disk: 'ssd' }],
      [' a = 1 ', { a: '1' }],
      ['', {}],
    ],
    bad: [
      ['region', 'is not key=value'],
      ['a=1,a=2', 'given twice'],
    ],
  },
  {
    option: 'agent_ttl',
    good: [
      ['10s', 10_000],
      ['1m30s', 90_000],
      ['2s', 2000],
      ['2.5s', 2500],
    ],
    bad: [
      ['10', 'has no unit'],
      ['1s', 'too short: at least 2s'],
      ['1999ms', 'too short'],
      ['ten', 'is not a duration'],
    ],
  },
  {
    option: 'engine_reconcile_interval',
    good: [
      ['2', 2000],
      ['0.5', 500],
      ['2.0', 2000],
    ],
    bad: [
      ['2s', 'without a unit'],
      ['0.1', 'between 0.5 and 600 seconds'],
    ],
  },
  {
    option: 'disable_engine',
    good: [
      ['true', true],
      ['false', false],
      ['1', true],
      ['no', false],
    ],
    bad: [['maybe', 'is not a boolean']],
  },
  {
    option: 'verbosity',
    good: [
      ['0', 0],
      ['2', 2],
    ],
    bad: [
      ['debug', 'is not a whole number'],
      ['-1', 'is not a whole number'],
      ['11', 'between 0 and 10'],
    ],
  },
  {
    option: 'units_directory',
    good: [['/run/fleet-ts/units/', '/run/fleet-ts/units/']],
    bad: [
      ['', 'needs a path'],
      ['units', 'is not an absolute path'],
    ],
  },
  {
    option: 'systemd_bus',
    good: [
      ['unix:path=/run/dbus/system_bus_socket', 'unix:path=/run/dbus/system_bus_socket'],
      ['', ''],
    ],
    bad: [['/run/dbus/system_bus_socket', 'is not a D-Bus address']],
  },
  {
    option: 'api_socket',
    good: [
      ['/run/fleet.sock', '/run/fleet.sock'],
      ['', ''],
    ],
    bad: [['fleet.sock', 'is not an absolute path']],
    with: ['--api-tcp=127.0.0.1:4001', '--api-allow-plain-http'],
  },
  {
    option: 'api_socket_mode',
    good: [
      ['0660', 0o660],
      ['600', 0o600],
    ],
    bad: [['rw-rw----', 'is not an octal file mode']],
  },
  {
    option: 'api_tcp',
    good: [
      ['127.0.0.1:4001', { host: '127.0.0.1', port: 4001 }],
      ['[::1]:4001', { host: '::1', port: 4001 }],
      ['', undefined],
    ],
    bad: [
      [':4001', 'has no host'],
      ['127.0.0.1', 'is not host:port'],
    ],
    with: ['--api-allow-plain-http'],
  },
  {
    option: 'etcd_username',
    good: [
      ['fleet', 'fleet'],
      [' fleet ', 'fleet'],
    ],
    bad: [['fle et', 'contains whitespace']],
    with: ['--etcd-password=s3cret'],
  },
  {
    option: 'etcd_password',
    good: [[' s3 cret', ' s3 cret']],
    bad: [],
    with: ['--etcd-username=fleet'],
  },
  {
    option: 'api_socket_group',
    good: [
      ['fleet-ops', 'fleet-ops'],
      ['1001', '1001'],
    ],
    bad: [['ops team', 'is not a group name or ID']],
  },
  {
    option: 'api_readonly_socket',
    good: [['/run/fleet-ro.sock', '/run/fleet-ro.sock']],
    bad: [['fleet-ro.sock', 'is not an absolute path']],
  },
  {
    option: 'api_readonly_socket_mode',
    good: [['0666', 0o666]],
    bad: [['rw', 'is not an octal file mode']],
  },
  {
    option: 'api_readonly_socket_group',
    good: [['users', 'users']],
    bad: [['a:b', 'is not a group name or ID']],
  },
  {
    option: 'api_tls_writers',
    good: [['ops-admin, deploy', ['ops-admin', 'deploy']]],
    bad: [],
    with: ['--api-tls-cert=/c.pem', '--api-tls-key=/k.pem', '--api-tls-ca=/ca.pem', '--api-tcp=127.0.0.1:1'],
  },
  {
    option: 'api_tls_cert',
    good: [['/etc/fleet/api.pem', '/etc/fleet/api.pem']],
    bad: [['api.pem', 'is not an absolute path']],
    with: TLS_API.filter((f) => !f.startsWith('--api-tls-cert')),
  },
  {
    option: 'api_tls_key',
    good: [['/etc/fleet/api-key.pem', '/etc/fleet/api-key.pem']],
    bad: [['api-key.pem', 'is not an absolute path']],
    with: TLS_API.filter((f) => !f.startsWith('--api-tls-key')),
  },
  {
    option: 'api_tls_ca',
    good: [['/etc/fleet/clients-ca.pem', '/etc/fleet/clients-ca.pem']],
    bad: [['ca.pem', 'is not an absolute path']],
    with: TLS_API.filter((f) => !f.startsWith('--api-tls-ca')),
  },
  {
    option: 'api_allow_plain_http',
    good: [
      ['true', true],
      ['false', false],
    ],
    bad: [['sure', 'is not a boolean']],
    with: ['--api-tls-cert=/c.pem', '--api-tls-key=/k.pem', '--api-tls-ca=/ca.pem', '--api-tcp=127.0.0.1:1'],
  },
  {
    option: 'token_limit',
    good: [
      ['100', 100],
      ['1', 1],
      ['65535', 65535],
    ],
    bad: [
      ['0', 'between 1 and 65535'],
      ['many', 'is not a whole number'],
    ],
  },
  {
    option: 'unit_drop_dir',
    good: [
      ['/etc/fleet/units/', '/etc/fleet/units/'],
      ['', ''],
    ],
    bad: [['units', 'is not an absolute path']],
  },
  {
    option: 'metrics_listen',
    good: [
      ['0.0.0.0:9101', { host: '0.0.0.0', port: 9101 }],
      ['[::1]:9101', { host: '::1', port: 9101 }],
      ['', undefined],
    ],
    bad: [
      [':9101', 'has no host'],
      ['9101', 'is not host:port'],
    ],
  },
  {
    option: 'event_history',
    good: [
      ['10000', 10_000],
      ['100', 100],
    ],
    bad: [
      ['99', 'out of range'],
      ['many', 'is not a whole number'],
    ],
  },
  {
    option: 'event_max_age',
    good: [
      ['24h', 86_400_000],
      ['1m', 60_000],
    ],
    bad: [
      ['30s', 'out of range: 1m to 720h'],
      ['721h', 'out of range'],
      ['1', 'has no unit'],
    ],
  },
];

describe('fleetd/config: options from file, environment and flags', () => {
  it('has parsing cases for every option', () => {
    expect(CASES.map((c) => c.option)).to.have.members(OPTION_LIST.map((o) => o.name));
  });

  it('has the documented defaults', () => {
    const c = config();
    expect(c.etcdServers).to.deep.equal(['http://127.0.0.1:2379']);
    expect(c.etcdKeyPrefix).to.equal('/fleet/');
    expect([c.etcdKeyFile, c.etcdCertFile, c.etcdCaFile, c.publicIp, c.systemdBus]).to.deep.equal([
      '',
      '',
      '',
      '',
      '',
    ]);
    expect(c.etcdRequestTimeoutMs).to.equal(1000);
    expect(c.metadata).to.deep.equal({});
    expect(c.agentTtlMs).to.equal(10_000);
    expect(c.engineReconcileIntervalMs).to.equal(2000);
    expect(c.disableEngine).to.equal(false);
    expect(c.verbosity).to.equal(0);
    expect(c.unitsDirectory).to.equal('/run/fleet/units/');
    expect(c.apiSocket).to.equal('/var/run/fleet.sock');
    expect(c.apiSocketMode).to.equal(0o660);
    expect(c.apiTcp).to.equal(undefined);
    expect([c.apiTlsCert, c.apiTlsKey, c.apiTlsCa]).to.deep.equal(['', '', '']);
    expect(c.apiAllowPlainHttp).to.equal(false);
    expect(c.tokenLimit).to.equal(100);
    expect(c.unitDropDir).to.equal('/etc/fleet/units/');
    expect(c.metricsListen).to.equal(undefined);
    expect(c.eventHistory).to.equal(10_000);
    expect(c.eventMaxAgeMs).to.equal(86_400_000);
    expect([...c.sources.values()].every((s) => s.kind === 'default')).to.equal(true);
  });

  for (const c of CASES) {
    const spec = OPTIONS_BY_NAME.get(c.option);
    if (spec === undefined) throw new Error(`no option ${c.option}`);
    const flag = flagName(c.option);
    const env = envName(c.option);
    const extra = c.with ?? [];
    describe(c.option, () => {
      for (const [text, expected] of c.good) {
        it(`reads ${JSON.stringify(text)} from the file, ${env} and ${flag}`, () => {
          const quoted = text.includes('"') ? `'${text}'` : `"${text}"`;
          expect(
            valueOf(config({ file: `${c.option}=${quoted}\n`, argv: extra }), c.option),
            'file',
          ).to.deep.equal(expected);
          expect(valueOf(config({ env: { [env]: text }, argv: extra }), c.option), 'env').to.deep.equal(
            expected,
          );
          expect(valueOf(config({ argv: [...extra, `${flag}=${text}`] }), c.option), 'flag').to.deep.equal(
            expected,
          );
          if (!spec.boolean && text !== '') {
            expect(valueOf(config({ argv: [...extra, flag, text] }), c.option), 'flag value').to.deep.equal(
              expected,
            );
          }
        });
      }
      for (const [text, why] of c.bad) {
        it(`refuses ${JSON.stringify(text)} naming the source, the option and why`, () => {
          const quoted = text.includes('"') ? `'${text}'` : `"${text}"`;
          const fromFile = problems({ file: `# fleet.conf\n${c.option}=${quoted}\n`, argv: extra });
          expect(fromFile).to.have.length(1);
          expect(fromFile[0]).to.contain(`${FILE} line 2: ${c.option}: `).and.to.contain(why);
          const fromEnv = problems({ env: { [env]: text }, argv: extra });
          expect(fromEnv[0]).to.contain(`environment variable ${env}: ${c.option}: `).and.to.contain(why);
          const fromFlag = problems({ argv: [...extra, `${flag}=${text}`] });
          expect(fromFlag[0]).to.contain(`flag ${flag}: ${c.option}: `).and.to.contain(why);
        });
      }
    });
  }

  describe('precedence: defaults < file < environment < flags', () => {
    const file = 'agent_ttl=20s\nverbosity=1\nmetadata=a=file\npublic_ip=10.0.0.1\n';

    it('takes the file over the defaults', () => {
      const c = config({ file });
      expect([c.agentTtlMs, c.verbosity, c.metadata, c.publicIp]).to.deep.equal([
        20_000,
        1,
        { a: 'file' },
        '10.0.0.1',
      ]);
      expect(describeSource(c.sources.get('agent_ttl') ?? { kind: 'default' })).to.equal(`${FILE} line 1`);
      expect(c.sources.get('token_limit')).to.deep.equal({ kind: 'default' });
    });

    it('takes the environment over the file', () => {
      const c = config({ file, env: { FLEET_AGENT_TTL: '30s', FLEET_METADATA: 'a=env' } });
      expect([c.agentTtlMs, c.verbosity, c.metadata]).to.deep.equal([30_000, 1, { a: 'env' }]);
      expect(c.sources.get('agent_ttl')).to.deep.equal({ kind: 'env', variable: 'FLEET_AGENT_TTL' });
    });

    it('takes flags over the environment', () => {
      const c = config({
        file,
        env: { FLEET_AGENT_TTL: '30s' },
        argv: ['--agent-ttl', '40s', '--verbosity=2'],
      });
      expect([c.agentTtlMs, c.verbosity]).to.deep.equal([40_000, 2]);
      expect(c.sources.get('agent_ttl')).to.deep.equal({ kind: 'flag', flag: '--agent-ttl' });
    });

    it('lets a set but empty variable win over the file, as fleet (os.LookupEnv)', () => {
      const c = config({ file, env: { FLEET_PUBLIC_IP: '', FLEET_METADATA: '' } });
      expect(c.publicIp).to.equal('');
      expect(c.metadata).to.deep.equal({});
    });

    it('refuses a set but empty variable where empty is no value', () => {
      expect(problems({ file, env: { FLEET_AGENT_TTL: '' } })).to.deep.equal([
        'environment variable FLEET_AGENT_TTL: agent_ttl: empty; write a duration with a unit, such as 10s, 1m30s or 500ms',
      ]);
    });

    it('takes the last of a repeated flag', () => {
      expect(config({ argv: ['--verbosity=1', '--verbosity=3'] }).verbosity).to.equal(3);
    });

    it('takes the last of a key repeated in the file, with a warning', () => {
      expect(config({ file: 'verbosity=1\nverbosity=2\n' }).verbosity).to.equal(2);
      expect(warnings({ file: 'verbosity=1\nverbosity=2\n' })).to.deep.equal([
        `${FILE} line 2: verbosity: also set on line 1; the last one wins`,
      ]);
    });

    it('checks a setting even when a later layer overrides it', () => {
      expect(problems({ file: 'agent_ttl=10\n', argv: ['--agent-ttl=10s'] })).to.deep.equal([
        `${FILE} line 1: agent_ttl: "10" has no unit; write a duration with a unit, such as 10s, 1m30s or 500ms`,
      ]);
    });

    it('ignores environment variables that are not FLEET_*', () => {
      expect(config({ env: { PATH: '/bin', FLEETCTL_ENDPOINT: 'x', AGENT_TTL: 'x' } }).agentTtlMs).to.equal(
        10_000,
      );
    });
  });

  describe('unknown options', () => {
    it('refuses an unknown key in the file with its line and a suggestion', () => {
      expect(problems({ file: 'verbosity=1\nagent_tll=10s\n' })).to.deep.equal([
        `${FILE} line 2: agent_tll: unknown option; did you mean agent_ttl?`,
      ]);
    });
    it('refuses an unknown FLEET_* variable with a suggestion', () => {
      expect(problems({ env: { FLEET_AGENT_TTLL: '10s' } })).to.deep.equal([
        'environment variable FLEET_AGENT_TTLL: not a fleetd option; did you mean FLEET_AGENT_TTL?',
      ]);
      expect(problems({ env: { FLEET_COLOR: 'blue' } })).to.deep.equal([
        'environment variable FLEET_COLOR: not a fleetd option',
      ]);
    });
    it('refuses a variable that is not upper case', () => {
      expect(problems({ env: { FLEET_agent_ttl: '10s' } })).to.deep.equal([
        'environment variable FLEET_agent_ttl: not a fleetd option; did you mean FLEET_AGENT_TTL?',
      ]);
    });
    it('refuses an unknown flag with a suggestion', () => {
      expect(problems({ argv: ['--agent-tll=10s'] })).to.deep.equal([
        'flag --agent-tll: unknown flag; did you mean --agent-ttl?',
      ]);
      expect(problems({ argv: ['--agent_ttl=10s'] })).to.deep.equal([
        'flag --agent_ttl: unknown flag; did you mean --agent-ttl?',
      ]);
      expect(problems({ argv: ['--frobnicate'] })).to.deep.equal(['flag --frobnicate: unknown flag']);
    });
  });

  describe('deprecated options', () => {
    for (const option of Object.keys(DEPRECATED_OPTIONS)) {
      it(`accepts ${option} from the file, the environment and a flag, warning that it is ignored`, () => {
        const message = DEPRECATED_OPTIONS[option] ?? '';
        expect(warnings({ file: `${option}=true\n` })).to.deep.equal([
          `${FILE} line 1: ${option}: ${message}`,
        ]);
        expect(warnings({ env: { [envName(option)]: 'x' } })).to.deep.equal([
          `environment variable ${envName(option)}: ${option}: ${message}`,
        ]);
        expect(warnings({ argv: [flagName(option)] })).to.deep.equal([
          `flag ${flagName(option)}: ${option}: ${message}`,
        ]);
        expect(warnings({ argv: [`${flagName(option)}=x`, '--verbosity=1'] })).to.have.length(1);
      });
    }
    it("says why verify_units is ignored in fleet's words", () => {
      expect(DEPRECATED_OPTIONS.verify_units).to.equal('is no longer supported - ignoring');
      expect(DEPRECATED_OPTIONS.authorized_keys_file).to.equal('is no longer supported - ignoring');
    });
  });

  describe('options that go together', () => {
    const cases: [string, Input, string][] = [
      [
        'an etcd client certificate without its key',
        { argv: ['--etcd-servers=https://a:1', '--etcd-certfile=/c.pem'] },
        'flag --etcd-certfile: etcd_certfile: needs etcd_keyfile too',
      ],
      [
        'an etcd key without its certificate',
        { file: 'etcd_servers=https://a:1\netcd_keyfile=/k.pem\n' },
        `${FILE} line 2: etcd_keyfile: needs etcd_certfile too`,
      ],
      [
        'etcd TLS files with http:// servers',
        { argv: ['--etcd-cafile=/ca.pem'] },
        'flag --etcd-cafile: etcd_cafile: TLS files are set but etcd_servers uses http:// URLs; use https:// URLs',
      ],
      [
        'an API certificate without key and CA',
        { argv: ['--api-tcp=127.0.0.1:1', '--api-allow-plain-http', '--api-tls-cert=/c.pem'] },
        'flag --api-tls-cert: api_tls_cert: needs api_tls_key and api_tls_ca too',
      ],
      [
        'a TCP API on a network address without TLS',
        { argv: ['--api-tcp=0.0.0.0:4001', '--api-allow-plain-http'] },
        'flag --api-tcp: api_tcp: 0.0.0.0 is not a loopback address',
      ],
      [
        'a plain TCP API on loopback without api_allow_plain_http',
        { env: { FLEET_API_TCP: '127.0.0.1:4001' } },
        'environment variable FLEET_API_TCP: api_tcp: needs api_tls_cert, api_tls_key and api_tls_ca, or api_allow_plain_http=true',
      ],
    ];
    for (const [title, input, expected] of cases) {
      it(`refuses ${title}`, () => {
        const found = problems(input);
        expect(found).to.have.length(1);
        expect(found[0]).to.contain(expected);
      });
    }

    it('serves TLS on a network address with certificate, key and CA', () => {
      expect(config({ argv: TLS_API }).apiTcp).to.deep.equal({ host: '10.0.0.1', port: 4001 });
    });

    it('warns about API TLS options without api_tcp', () => {
      expect(
        warnings({ argv: ['--api-tls-cert=/c.pem', '--api-tls-key=/k.pem', '--api-tls-ca=/ca.pem'] }),
      ).to.deep.equal([
        'flag --api-tls-cert: api_tls_cert: ignored: api_tcp is empty',
        'flag --api-tls-key: api_tls_key: ignored: api_tcp is empty',
        'flag --api-tls-ca: api_tls_ca: ignored: api_tcp is empty',
      ]);
    });

    it('warns when no API is served at all', () => {
      expect(warnings({ env: { FLEET_API_SOCKET: '' } })).to.deep.equal([
        'environment variable FLEET_API_SOCKET: api_socket: empty and api_tcp is empty too: no API is served, fleetctl cannot reach this fleetd',
      ]);
    });
  });

  it('reports every problem of every source at once', () => {
    const found = problems({
      file: 'agent_ttl=10\nbogus=1\n[section]\nverbosity=1\n',
      env: { FLEET_VERBOSITY: 'loud' },
      argv: ['--token-limit=0'],
    });
    expect(found).to.deep.equal([
      `${FILE} line 4: verbosity is inside section [section]; fleetd reads options only at the top of the file, before any section`,
      `${FILE} line 2: bogus: unknown option`,
      `${FILE} line 1: agent_ttl: "10" has no unit; write a duration with a unit, such as 10s, 1m30s or 500ms`,
      'environment variable FLEET_VERBOSITY: verbosity: "loud" is not a whole number',
      'flag --token-limit: token_limit: 0 is out of range: between 1 and 65535',
    ]);
  });
});

describe('fleetd/config: the command line', () => {
  const cases: [string, readonly string[], unknown][] = [
    ['nothing: run with defaults', [], { kind: 'run', configPath: undefined, settings: [] }],
    ['--config PATH', ['--config', '/tmp/f.conf'], { kind: 'run', configPath: '/tmp/f.conf', settings: [] }],
    ['--config=PATH', ['--config=/tmp/f.conf'], { kind: 'run', configPath: '/tmp/f.conf', settings: [] }],
    ['--version', ['--version'], { kind: 'version' }],
    ['version', ['version'], { kind: 'version' }],
    ['--version among other flags', ['--verbosity=1', '--version'], { kind: 'version' }],
    ['--help', ['--help'], { kind: 'help' }],
    ['-h', ['-h'], { kind: 'help' }],
    ['a positional argument', ['start'], { kind: 'positional', args: ['start'] }],
    ['version with more', ['version', 'x'], { kind: 'positional', args: ['version', 'x'] }],
    ['an argument after --', ['--', '--verbosity=1'], { kind: 'positional', args: ['--verbosity=1'] }],
    [
      'boolean flags with and without a value',
      ['--disable-engine', '--api-allow-plain-http=false'],
      {
        kind: 'run',
        configPath: undefined,
        settings: [
          { name: 'disable_engine', flag: '--disable-engine', value: 'true' },
          { name: 'api_allow_plain_http', flag: '--api-allow-plain-http', value: 'false' },
        ],
      },
    ],
  ];
  for (const [title, argv, expected] of cases) {
    it(`reads ${title}`, () => {
      expect(parseCommandLine(argv)).to.deep.equal(expected);
    });
  }

  const bad: [string, readonly string[], string][] = [
    ['--config without a path', ['--config'], 'flag --config: needs the path of a config file'],
    [
      '--config followed by a flag',
      ['--config', '--verbosity=1'],
      'flag --config: needs the path of a config file',
    ],
    ["Go's -config", ['-config', '/f'], 'flag -config: use --config (long options take two dashes)'],
    ["Go's -agent-ttl", ['-agent-ttl=3s'], 'flag -agent-ttl: use --agent-ttl (long options take two dashes)'],
    ['an unknown short flag', ['-x'], 'flag -x: unknown flag'],
    [
      'an option without its value',
      ['--agent-ttl'],
      'flag --agent-ttl: agent_ttl: needs a value: --agent-ttl DURATION or --agent-ttl=DURATION',
    ],
    [
      'an option followed by a flag',
      ['--verbosity', '--disable-engine'],
      'flag --verbosity: verbosity: needs a value, got the flag "--disable-engine"; to give a value that starts with -, write --verbosity=VALUE',
    ],
    ['--help with a value', ['--help=yes'], 'flag --help: takes no value'],
  ];
  for (const [title, argv, expected] of bad) {
    it(`refuses ${title}`, () => {
      const cl = parseCommandLine(argv);
      expect(cl.kind).to.equal('invalid');
      if (cl.kind === 'invalid') expect(cl.problems.map(formatNotice)).to.deep.equal([expected]);
    });
  }

  it('refuses a run with positional arguments through buildConfig', () => {
    expect(problems({ argv: ['now'] })).to.deep.equal(['takes no arguments, got "now"']);
  });
});

describe('fleetd/config: reload diff and help', () => {
  it('lists the options whose values changed, with their reload scope', () => {
    const before = config({ file: 'verbosity=0\nmetadata=a=1,b=2\n' });
    const after = config({ file: 'verbosity=1\nmetadata=b=2,a=1\ntoken_limit=50\nagent_ttl=1m\n' });
    expect(diffConfig(before, after)).to.deep.equal([
      { option: 'agent_ttl', from: '10s', to: '1m0s', reload: 'server' },
      { option: 'verbosity', from: '0', to: '1', reload: 'live' },
      { option: 'token_limit', from: '100', to: '50', reload: 'api' },
    ]);
    expect(diffConfig(before, before)).to.deep.equal([]);
  });

  it('documents every option with its variable, flag and default in --help', () => {
    const help = usageText();
    for (const o of OPTION_LIST) {
      expect(help).to.contain(`  ${o.name}  (${envName(o.name)}, ${flagName(o.name)}`);
      const defaultShown = o.defaultText === '' ? 'Default: empty.' : `Default: ${o.defaultText}.`;
      const from = help.indexOf(`  ${o.name}  (`);
      const to = help.slice(from + 1).search(/\n {2}\S|\n\n/);
      const block = help.slice(from, from + 1 + to).replace(/\s+/g, ' ');
      expect(block, o.name).to.contain(defaultShown);
    }
    for (const d of Object.keys(DEPRECATED_OPTIONS)) expect(help.replace(/\s+/g, ' ')).to.contain(d);
    expect(help).to.contain('fleetd is the server component of fleet');
  });
});

describe('fleetd/config: etcd authentication', () => {
  it('takes etcd_username and etcd_password (fleet-ts ignored them with a warning)', () => {
    const r = build({ file: 'etcd_servers=https://etcd:2379\netcd_username=fleet\netcd_password=s3cret\n' });
    expect(r.ok).to.equal(true);
    if (!r.ok) return;
    expect(r.config.etcdUsername).to.equal('fleet');
    expect(r.config.etcdPassword).to.equal('s3cret');
    expect(r.warnings.map(formatNotice)).to.deep.equal([]);
  });

  it('needs both, naming the missing one', () => {
    const r = build({ env: { FLEET_ETCD_USERNAME: 'fleet' } });
    expect(r.ok).to.equal(false);
    if (r.ok) return;
    expect(r.problems.map(formatNotice).join('\n')).to.contain('needs etcd_password too');
  });

  it('warns when the password would cross the network in clear (http://)', () => {
    const r = build({ file: 'etcd_username=fleet\netcd_password=s3cret\n' });
    expect(r.ok && r.warnings.map(formatNotice).join('\n')).to.contain('cross the network in clear');
  });

  it('never shows the password in the reload diff, yet notices when it changes', () => {
    const before = config({ file: 'etcd_username=fleet\netcd_password=old\n' });
    const after = config({ file: 'etcd_username=fleet\netcd_password=new\n' });
    expect(diffConfig(before, after)).to.deep.equal([
      { option: 'etcd_password', from: '(set)', to: '(set)', reload: 'server' },
    ]);
  });
});

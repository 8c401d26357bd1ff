import { expect } from 'chai';
import { describe, it, beforeEach, afterEach } from 'mocha';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { parseCommandLine, type RunCommandLine } from '../../fleetd/config-command-line.js';
import { formatNotice } from '../../fleetd/config-notice.js';
import { loadConfig, type LoadResult } from '../../fleetd/config-loader.js';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

function run(argv: readonly string[]): RunCommandLine {
  const cl = parseCommandLine(argv);
  if (cl.kind !== 'run') throw new Error(`expected a run command line, got ${cl.kind}`);
  return cl;
}

function problemsOf(r: LoadResult): string[] {
  if (r.ok) throw new Error('expected problems');
  return r.problems.map(formatNotice);
}

describe('fleetd/config-loader: reading the config file and TLS files', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleetd-config-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('proceeds without a file when the default one does not exist, as fleet', async () => {
    const r = await loadConfig({ commandLine: run([]), env: {}, defaultPath: join(dir, 'fleet.conf') });
    if (!r.ok) throw new Error(r.problems.map(formatNotice).join('; '));
    expect(r.fileNote).to.equal('No provided or default config file found - proceeding without');
    expect(r.file).to.equal(undefined);
    expect(r.material).to.deep.equal({ etcdTls: undefined, apiTls: undefined });
  });

  it('reads the default file when it exists', async () => {
    const path = join(dir, 'fleet.conf');
    await writeFile(path, 'agent_ttl=3s\n');
    const r = await loadConfig({ commandLine: run([]), env: {}, defaultPath: path });
    if (!r.ok) throw new Error(r.problems.map(formatNotice).join('; '));
    expect(r.fileNote).to.equal(`Using default config file ${path}`);
    expect(r.config.agentTtlMs).to.equal(3000);
  });

  it('reads the file of --config instead of the default, with environment and flags on top', async () => {
    const path = join(dir, 'other.conf');
    await writeFile(path, 'agent_ttl=3s\nverbosity=1\nmetadata=a=1\n');
    await writeFile(join(dir, 'fleet.conf'), 'agent_ttl=99s\n');
    const r = await loadConfig({
      commandLine: run(['--config', path, '--verbosity=2']),
      env: { FLEET_METADATA: 'a=2' },
      defaultPath: join(dir, 'fleet.conf'),
    });
    if (!r.ok) throw new Error(r.problems.map(formatNotice).join('; '));
    expect(r.fileNote).to.equal(`Using provided config file ${path}`);
    expect([r.config.agentTtlMs, r.config.verbosity, r.config.metadata]).to.deep.equal([3000, 2, { a: '2' }]);
  });

  it('refuses a --config file that does not exist', async () => {
    const path = join(dir, 'missing.conf');
    const found = problemsOf(await loadConfig({ commandLine: run(['--config', path]), env: {} }));
    expect(found).to.have.length(1);
    expect(found[0]).to.contain(`flag --config: unable to use config file ${path}: ENOENT`);
  });

  it('refuses a --config path that is a directory', async () => {
    expect(problemsOf(await loadConfig({ commandLine: run(['--config', dir]), env: {} }))).to.deep.equal([
      `flag --config: ${dir} is a directory, not a file`,
    ]);
  });

  it('refuses a default path that is a directory', async () => {
    const path = join(dir, 'fleet.conf');
    await mkdir(path);
    expect(problemsOf(await loadConfig({ commandLine: run([]), env: {}, defaultPath: path }))).to.deep.equal([
      `${path} is a directory, not a file`,
    ]);
  });

  it('reads the TLS files the options name', async () => {
    for (const f of ['ca.pem', 'cert.pem', 'key.pem', 'api.pem', 'api-key.pem', 'clients.pem']) {
      await writeFile(join(dir, f), `${PEM}# ${f}\n`);
    }
    const conf = join(dir, 'fleet.conf');
    await writeFile(
      conf,
      [
        'etcd_servers=https://10.0.0.1:2379',
        `etcd_cafile=${join(dir, 'ca.pem')}`,
        `etcd_certfile=${join(dir, 'cert.pem')}`,
        `etcd_keyfile=${join(dir, 'key.pem')}`,
        'api_tcp=10.0.0.1:4001',
        `api_tls_cert=${join(dir, 'api.pem')}`,
        `api_tls_key=${join(dir, 'api-key.pem')}`,
        `api_tls_ca=${join(dir, 'clients.pem')}`,
      ].join('\n'),
    );
    const r = await loadConfig({ commandLine: run([]), env: {}, defaultPath: conf });
    if (!r.ok) throw new Error(r.problems.map(formatNotice).join('; '));
    expect(r.material.etcdTls).to.deep.equal({
      ca: `${PEM}# ca.pem\n`,
      cert: `${PEM}# cert.pem\n`,
      key: `${PEM}# key.pem\n`,
    });
    expect(r.material.apiTls).to.deep.equal({
      cert: `${PEM}# api.pem\n`,
      key: `${PEM}# api-key.pem\n`,
      ca: `${PEM}# clients.pem\n`,
    });
  });

  it('refuses TLS files that cannot be read or are not PEM, naming the setting', async () => {
    await writeFile(join(dir, 'ca.pem'), 'not a certificate');
    const missing = join(dir, 'missing.pem');
    const found = problemsOf(
      await loadConfig({
        commandLine: run([`--etcd-cafile=${join(dir, 'ca.pem')}`, '--etcd-servers=https://a:1']),
        env: { FLEET_ETCD_CERTFILE: missing, FLEET_ETCD_KEYFILE: missing },
        defaultPath: join(dir, 'none.conf'),
      }),
    );
    expect(found).to.have.length(3);
    expect(found[0]).to.equal(
      `flag --etcd-cafile: etcd_cafile: ${join(dir, 'ca.pem')} is not a PEM file (no -----BEGIN line)`,
    );
    expect(found[1]).to.contain(
      `environment variable FLEET_ETCD_CERTFILE: etcd_certfile: cannot read ${missing}: ENOENT`,
    );
    expect(found[2]).to.contain(
      `environment variable FLEET_ETCD_KEYFILE: etcd_keyfile: cannot read ${missing}`,
    );
  });

  it('reports configuration problems before reading any TLS file', async () => {
    const found = problemsOf(
      await loadConfig({ commandLine: run(['--agent-ttl=1']), env: {}, defaultPath: join(dir, 'none.conf') }),
    );
    expect(found).to.deep.equal([
      'flag --agent-ttl: agent_ttl: "1" has no unit; write a duration with a unit, such as 10s, 1m30s or 500ms',
    ]);
  });
});

import { expect } from 'chai';
import { describe, it } from 'mocha';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { VERSION } from '../../lib/version.js';

/** The built binary (this file runs from dist/spec/fleetd/). */
const MAIN = fileURLToPath(new URL('../../fleetd/main.js', import.meta.url));

function fleetd(args: readonly string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('fleetd/main: the command line of the binary', function () {
  this.timeout(30_000);

  it('prints its version with --version and with version', () => {
    for (const args of [['--version'], ['version']]) {
      expect(fleetd(args)).to.deep.equal({ code: 0, stdout: `fleetd version ${VERSION}\n`, stderr: '' });
    }
  });

  it('prints help listing every option with --help', () => {
    const r = fleetd(['--help']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.contain('Usage: fleetd [--config PATH] [--version] [--<option> VALUE]...');
    expect(r.stdout).to.contain('agent_ttl  (FLEET_AGENT_TTL, --agent-ttl DURATION)');
  });

  it("refuses arguments in fleet's words, with the usage, exit 1", () => {
    const r = fleetd(['start', 'web.service']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(
      /^fleetd takes no arguments\. Did you mean to invoke fleetctl instead\?\nUsage: fleetd /,
    );
  });

  it('refuses an invalid configuration with every problem and exit 2, starting nothing', () => {
    const r = fleetd(['--agent-ttl=10', '--config', '/nonexistent/fleet.conf'], { FLEET_BOGUS: '1' });
    expect(r.code).to.equal(2);
    expect(r.stdout).to.equal('');
    expect(r.stderr).to.contain('fleetd: invalid configuration:\n');
    expect(r.stderr).to.contain('flag --config: unable to use config file /nonexistent/fleet.conf');
  });

  it('refuses an unknown flag and an unknown FLEET_* variable with exit 2', () => {
    const flag = fleetd(['--etcd-server=http://a:1']);
    expect(flag.code).to.equal(2);
    expect(flag.stderr).to.contain('flag --etcd-server: unknown flag; did you mean --etcd-servers?');
    const env = fleetd(['--config', '/dev/null'], { FLEET_BOGUS: '1' });
    expect(env.code).to.equal(2);
    expect(env.stderr).to.contain('environment variable FLEET_BOGUS: not a fleetd option');
  });
});

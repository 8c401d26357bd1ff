import { expect } from 'chai';
import { before, describe, it } from 'mocha';
import { spawnSync } from 'node:child_process';

import { run } from '../../fleetctl/program.js';
import { sink } from './harness.js';

/** `fleetctl completion bash`, run in-process. */
async function completionScript(): Promise<string> {
  const out = sink();
  const err = sink();
  const code = await run(['completion', 'bash'], { stdout: out.stream, stderr: err.stream, env: {} });
  expect(code, err.text()).to.equal(0);
  return out.text();
}

/** What bash completes for the words of a command line (the last one being completed). */
function complete(script: string, words: readonly string[]): string[] {
  const quoted = words.map((w) => `'${w}'`).join(' ');
  const r = spawnSync(
    'bash',
    [
      '-c',
      // No fleetd here: the cluster's unit names come from a stand-in for fleetctl.
      `${script}\nfleetctl() { printf 'web@1.service\\nhello.service\\n'; }\n` +
        `COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _fleetctl 2>/dev/null; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ],
    { encoding: 'utf8', cwd: '/' },
  );
  expect(r.status, r.stderr).to.equal(0);
  return r.stdout.split('\n').filter(Boolean).sort();
}

describe('fleetctl completion bash', () => {
  let script = '';
  before(async () => {
    script = await completionScript();
  });

  it('prints a bash script that bash accepts and that registers _fleetctl for fleetctl', () => {
    const r = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    expect(script).to.match(/\ncomplete -F _fleetctl fleetctl\n$/);
  });

  it('completes command names, global flags and the flags of the command being typed', () => {
    expect(complete(script, ['fleetctl', 'st'])).to.deep.equal(['start', 'status', 'stop']);
    expect(complete(script, ['fleetctl', 'list-u'])).to.deep.equal(['list-unit-files', 'list-units']);
    expect(complete(script, ['fleetctl', '--end'])).to.deep.equal(['--endpoint=']);
    expect(complete(script, ['fleetctl', 'list-units', '--f'])).to.deep.equal(['--fields=', '--full']);
    expect(complete(script, ['fleetctl', '--debug', 'start', '--no-'])).to.deep.equal(['--no-block']);
    expect(complete(script, ['fleetctl', 'help', 'ver'])).to.deep.equal(['verify', 'version']);
    expect(complete(script, ['fleetctl', 'completion', ''])).to.deep.equal(['bash']);
  });

  it('completes units the cluster knows for commands on units, and local files for those that read them', () => {
    expect(complete(script, ['fleetctl', 'stop', 'we'])).to.deep.equal(['web@1.service']);
    expect(complete(script, ['fleetctl', 'status', ''])).to.deep.equal(['hello.service', 'web@1.service']);
    expect(complete(script, ['fleetctl', 'submit', '/et'])).to.deep.equal(['/etc']);
    expect(complete(script, ['fleetctl', 'start', 'hel'])).to.deep.equal(['hello.service']);
  });

  it('lists every command of fleetctl help, and no command that does not exist', async () => {
    const out = sink();
    await run(['help'], { stdout: out.stream, stderr: sink().stream, env: {} });
    const listed = (/COMMANDS:\n((?:\t.*\n)+)/.exec(out.text())?.[1] ?? '')
      .split('\n')
      .map((l) => l.split('\t')[1])
      .filter(Boolean);
    expect(complete(script, ['fleetctl', ''])).to.deep.equal([...listed].sort());
  });

  it('exits 1 with a message for a shell it does not know, or none', async () => {
    for (const args of [['completion'], ['completion', 'zsh'], ['completion', 'bash', 'x']]) {
      const err = sink();
      const code = await run(args, { stdout: sink().stream, stderr: err.stream, env: {} });
      expect(code, args.join(' ')).to.equal(1);
      expect(err.text()).to.contain('completion takes one argument, the shell: bash');
    }
  });
});

/**
 * A stand-in for the system `ssh` client, for tests that run fleetctl's real process spawning:
 * an executable `ssh` that logs its arguments, then runs the remote command with `sh -c` locally
 * (as the remote host's shell would, so fleetctl's quoting is exercised), with `fleetctl`,
 * `systemctl` and `journalctl` on its PATH: the built fleetctl, and fakes that print what they
 * were asked and exit 3 (`systemctl status` of an inactive unit) or 0.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built fleetctl entry point. */
export const FLEETCTL_MAIN = fileURLToPath(new URL('../../fleetctl/main.js', import.meta.url));

const SSH = `#!/usr/bin/env node
const { spawn } = require('node:child_process');
const { appendFileSync } = require('node:fs');
const args = process.argv.slice(2);
if (process.env.FAKE_SSH_LOG) appendFileSync(process.env.FAKE_SSH_LOG, JSON.stringify(args) + '\\n');
const withValue = new Set(['-o', '-l', '-p', '-J', '-W', '-i', '-F']);
let i = 0;
while (i < args.length && args[i].startsWith('-')) i += withValue.has(args[i]) ? 2 : 1;
const host = args[i];
const remote = args.slice(i + 1);
if (remote.length === 0) {
  process.stdout.write('fake-ssh ' + host + ': interactive shell\\n');
  process.exit(0);
}
const env = { ...process.env, PATH: process.env.FAKE_SSH_REMOTE_PATH + ':' + process.env.PATH };
const child = spawn('sh', ['-c', remote.join(' ')], { stdio: 'inherit', env });
child.on('close', (code) => process.exit(code === null ? 255 : code));
`;

const FLEETCTL = `#!/bin/sh
exec "${process.execPath}" "${FLEETCTL_MAIN}" "$@"
`;

const SYSTEMCTL = `#!/bin/sh
echo "fake systemctl on $FAKE_SSH_HOSTNAME: $*"
exit 3
`;

const JOURNALCTL = `#!/bin/sh
echo "fake journalctl: $*"
`;

/** Where the fakes are and the environment that puts them in use. */
export interface FakeSsh {
  /** Goes in front of PATH so `ssh` is the fake. */
  readonly binDir: string;
  /** One JSON array of arguments per ssh call. */
  readonly log: string;
  /** PATH, FAKE_SSH_LOG and FAKE_SSH_REMOTE_PATH for the fleetctl run. */
  readonly env: Record<string, string>;
}

/** Writes the fakes under `dir`. */
export async function installFakeSsh(dir: string): Promise<FakeSsh> {
  const binDir = path.join(dir, 'fake-bin');
  const remoteDir = path.join(dir, 'fake-remote-bin');
  await mkdir(binDir, { recursive: true });
  await mkdir(remoteDir, { recursive: true });
  const files: [string, string][] = [
    [path.join(binDir, 'ssh'), SSH],
    [path.join(remoteDir, 'fleetctl'), FLEETCTL],
    [path.join(remoteDir, 'systemctl'), SYSTEMCTL],
    [path.join(remoteDir, 'journalctl'), JOURNALCTL],
  ];
  for (const [file, text] of files) {
    await writeFile(file, text);
    await chmod(file, 0o755);
  }
  const log = path.join(dir, 'ssh.log');
  return {
    binDir,
    log,
    env: {
      PATH: `${binDir}:${process.env.PATH ?? ''}`,
      FAKE_SSH_LOG: log,
      FAKE_SSH_REMOTE_PATH: remoteDir,
      FAKE_SSH_HOSTNAME: 'remote',
    },
  };
}

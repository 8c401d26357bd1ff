// npm run package: the single executable, the Debian package and the .tar.gz (docs in README.md,
// "Install on your machines"). Needs no network: everything comes from node_modules and this node.
//
//   node dist/packaging/build.js [--version V] [--out DIR]
//
// Writes DIR (default dist/package/): fleet-ts_V_ARCH.deb, fleet-ts-V-linux-ARCH.tar.gz and the
// executable itself (fleet-ts), and prints their sizes.
import { execFile } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

import { usageText } from '../fleetd/config-usage.js';
import { DEFAULT_OUT_DIR, REPO_DIR, artifactNames, debianArch, packageVersion } from './artifacts.js';
import { bundle, makeExecutable, type BundledPackage } from './bundle.js';
import { defaultFleetConf } from './fleet-conf.js';
import { renderManPage } from './man-page.js';

const run = promisify(execFile);

/** The Debian package's conffiles: dpkg keeps an operator's edits to them on upgrade. */
const CONFFILES = ['/etc/fleet/fleet.conf'];

/** The help text of `fleetctl ARGS`, by running the executable under that name. */
async function fleetctlHelp(fleetctl: string, args: readonly string[]): Promise<string> {
  const { stdout } = await run(fleetctl, [...args], { env: { PATH: '/usr/bin:/bin' } });
  return stdout;
}

/** Lays out the installed files under `root` (usr/bin, lib/systemd/system, etc/fleet, ...). */
async function stageFiles(options: {
  root: string;
  binary: string;
  version: string;
  packages: readonly BundledPackage[];
}): Promise<void> {
  const { root } = options;
  rmSync(root, { recursive: true, force: true });
  const dir = (path: string): string => {
    mkdirSync(join(root, path), { recursive: true, mode: 0o755 });
    return join(root, path);
  };
  const file = (path: string, content: string | Buffer, mode = 0o644): void => {
    dir(dirname(path));
    writeFileSync(join(root, path), content);
    chmodSync(join(root, path), mode);
  };

  cpSync(options.binary, join(dir('usr/bin'), 'fleetd'));
  chmodSync(join(root, 'usr/bin/fleetd'), 0o755);
  symlinkSync('fleetd', join(root, 'usr/bin/fleetctl'));

  const unitsDir = join(REPO_DIR, 'fleetd/units');
  for (const unit of readdirSync(unitsDir)
    .filter((f) => /\.(service|socket)$/.test(f))
    .sort()) {
    file(`lib/systemd/system/${unit}`, readFileSync(join(unitsDir, unit)));
  }
  file('etc/fleet/fleet.conf', defaultFleetConf());
  dir('etc/fleet/units');

  const fleetctl = join(root, 'usr/bin/fleetctl');
  file(
    'usr/share/bash-completion/completions/fleetctl',
    await fleetctlHelp(fleetctl, ['completion', 'bash']),
  );

  // Man pages from --help: fleetd's usage, fleetctl's help and every command's.
  const mainHelp = await fleetctlHelp(fleetctl, ['help']);
  const commandNames = (/COMMANDS:\n((?:\t.*\n)+)/.exec(mainHelp)?.[1] ?? '')
    .split('\n')
    .map((line) => line.split('\t')[1])
    .filter((name): name is string => name !== undefined && name !== '');
  const commandHelps: string[] = [];
  for (const name of commandNames) commandHelps.push(await fleetctlHelp(fleetctl, ['help', name]));
  const seeAlsoCtl = ['fleetd(8)', 'systemctl(1)', 'etcdctl(1)'];
  const man = (path: string, text: string): void => {
    file(path, gzipSync(Buffer.from(text), { level: 9 }));
  };
  man(
    'usr/share/man/man1/fleetctl.1.gz',
    renderManPage({
      name: 'fleetctl',
      section: 1,
      summary: 'command-line interface to a fleet-ts cluster',
      version: options.version,
      sections: [
        { title: 'Description', text: mainHelp },
        ...commandNames.map((name, i) => ({ title: `Command ${name}`, text: commandHelps[i] ?? '' })),
        {
          title: 'Files',
          text: [
            '/var/run/fleet.sock',
            "\tThe local fleetd's API socket, fleetctl's default endpoint.",
            '/usr/share/bash-completion/completions/fleetctl',
            '\tBash completion (fleetctl completion bash).',
          ].join('\n'),
        },
      ],
      seeAlso: seeAlsoCtl,
    }),
  );
  man(
    'usr/share/man/man8/fleetd.8.gz',
    renderManPage({
      name: 'fleetd',
      section: 8,
      summary: 'the fleet-ts daemon: agent and engine of one machine',
      version: options.version,
      sections: [
        { title: 'Synopsis and options', text: usageText() },
        {
          title: 'Files',
          text: [
            '/etc/fleet/fleet.conf',
            '\tThe configuration: every option, commented out with its default.',
            '/etc/fleet/units/',
            '\tThe unit drop folder (unit_drop_dir).',
            '/lib/systemd/system/fleetd.service',
            '\tThe systemd service: systemctl status fleetd, journalctl -u fleetd.',
          ].join('\n'),
        },
      ],
      seeAlso: ['fleetctl(1)', 'systemd(1)', 'etcd(1)'],
    }),
  );

  file(
    'usr/share/doc/fleet-ts/copyright',
    [
      'fleet-ts: a systemd-unit cluster engine in the style of CoreOS fleet.',
      'License: Apache-2.0 (/usr/share/common-licenses/Apache-2.0).',
      '',
      `The executable is Node.js ${process.version} (MIT License and the licenses of the`,
      'libraries it includes: https://github.com/nodejs/node/blob/main/LICENSE) with fleet-ts and',
      'these npm packages bundled into it:',
      ...options.packages.map((p) => `  ${p.name} ${p.version}: ${p.license}`),
      '',
    ].join('\n'),
  );
}

/** Installed-Size: the size of the files in KiB, as dpkg-gencontrol counts it. */
function installedSizeKiB(root: string): number {
  let total = 0;
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      total += Math.ceil((entry.isFile() ? statSync(path).size : 0) / 1024) || 1;
    }
  };
  walk(root);
  return total;
}

/** Adds DEBIAN/ to the staged tree and builds the .deb with dpkg-deb. */
async function buildDeb(root: string, version: string, debFile: string): Promise<void> {
  const control = join(root, 'DEBIAN');
  const sums: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const rel = relative(root, path);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && !rel.startsWith('etc/')) {
        sums.push(`${createHash('md5').update(readFileSync(path)).digest('hex')}  ${rel}`);
      }
    }
  };
  walk(root);
  const size = installedSizeKiB(root);
  mkdirSync(control, { mode: 0o755 });
  const write = (name: string, text: string, mode = 0o644): void => {
    writeFileSync(join(control, name), text);
    chmodSync(join(control, name), mode);
  };
  write(
    'control',
    [
      'Package: fleet-ts',
      `Version: ${version}`,
      `Architecture: ${debianArch()}`,
      'Maintainer: fleet-ts developers <fleet-ts@localhost>',
      `Installed-Size: ${size}`,
      'Depends: libc6 (>= 2.28), libgcc-s1, libstdc++6, init-system-helpers (>= 1.52)',
      'Recommends: systemd',
      'Section: admin',
      'Priority: optional',
      'Description: cluster-wide systemd unit scheduler in the style of CoreOS fleet',
      ' fleet-ts schedules ordinary systemd unit files across a cluster of machines',
      ' that share an etcd v3 cluster. Every machine runs fleetd (the agent and the',
      " engine); fleetctl is a drop-in replacement for fleet's command-line tool.",
      ' .',
      ' One self-contained executable (Node.js built in): /usr/bin/fleetd, with',
      ' /usr/bin/fleetctl a link to it.',
      '',
    ].join('\n'),
  );
  write('conffiles', `${CONFFILES.join('\n')}\n`);
  write('md5sums', `${sums.sort().join('\n')}\n`);
  for (const script of ['postinst', 'prerm', 'postrm']) {
    write(script, readFileSync(join(REPO_DIR, 'packaging/debian', script), 'utf8'), 0o755);
  }
  // gzip: xz of the 90 MB executable takes a minute on two cores; gzip a few seconds.
  await run('dpkg-deb', ['--root-owner-group', '-Zgzip', '-z6', '--build', root, debFile]);
  rmSync(control, { recursive: true });
}

/** The .tar.gz: the same files under fleet-ts-VERSION/, owned by root. */
async function buildTar(root: string, version: string, tarFile: string): Promise<void> {
  const top = `fleet-ts-${version}`;
  await run('tar', [
    '--create',
    '--gzip',
    '--file',
    tarFile,
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--sort=name',
    `--transform=s,^\\.,${top},`,
    '-C',
    root,
    '.',
  ]);
}

export interface BuildResult {
  readonly binary: string;
  readonly deb: string;
  readonly tar: string;
  readonly binaryBytes: number;
  readonly debBytes: number;
  readonly tarBytes: number;
}

/** Builds everything into `outDir`. Needs `npm run build` first (it bundles dist/). */
export async function buildPackage(
  options: { version?: string; outDir?: string } = {},
): Promise<BuildResult> {
  const version = options.version ?? packageVersion();
  if (!/^[0-9][A-Za-z0-9.+~-]*$/.test(version)) throw new Error(`not a Debian version: ${version}`);
  const outDir = options.outDir ?? DEFAULT_OUT_DIR;
  const work = join(outDir, 'work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const bundleFile = join(work, 'fleet-ts.cjs');
  const packages = await bundle({
    repoDir: REPO_DIR,
    distDir: join(REPO_DIR, 'dist'),
    outFile: bundleFile,
    version,
  });
  const binary = join(outDir, 'fleet-ts');
  await makeExecutable({ bundleFile, workDir: join(work, 'sea'), outBinary: binary, strip: true });
  // The executable under its two names, for running it from the build directory.
  for (const name of ['fleetd', 'fleetctl']) {
    rmSync(join(outDir, name), { force: true });
    symlinkSync('fleet-ts', join(outDir, name));
  }
  const root = join(work, 'root');
  await stageFiles({ root, binary, version, packages });
  const names = artifactNames(version);
  const deb = join(outDir, names.deb);
  const tar = join(outDir, names.tar);
  await buildTar(root, version, tar);
  await buildDeb(root, version, deb);
  rmSync(work, { recursive: true, force: true });
  return {
    binary,
    deb,
    tar,
    binaryBytes: statSync(binary).size,
    debBytes: statSync(deb).size,
    tarBytes: statSync(tar).size,
  };
}

async function main(argv: readonly string[]): Promise<void> {
  let version: string | undefined;
  let outDir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--version' && argv[i + 1] !== undefined) version = argv[++i];
    else if (arg === '--out' && argv[i + 1] !== undefined) outDir = argv[++i];
    else
      throw new Error(`usage: node dist/packaging/build.js [--version V] [--out DIR] (not ${String(arg)})`);
  }
  const started = Date.now();
  const r = await buildPackage({
    ...(version === undefined ? {} : { version }),
    ...(outDir === undefined ? {} : { outDir }),
  });
  const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;
  process.stdout.write(
    `${r.binary}  ${mb(r.binaryBytes)}\n${r.deb}  ${mb(r.debBytes)}\n${r.tar}  ${mb(r.tarBytes)}\n` +
      `built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`npm run package: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

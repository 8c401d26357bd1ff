import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What `npm run package` makes and where: shared by the build and the test harness. */

/** The repository: dist/packaging/artifacts.js -> ../.. */
export const REPO_DIR = join(dirname(fileURLToPath(import.meta.url)), '../..');
/** Where `npm run package` writes, and where the test harness looks for the package. */
export const DEFAULT_OUT_DIR = join(REPO_DIR, 'dist/package');

/** Debian's name for a Node architecture. */
export function debianArch(arch: string = process.arch): string {
  const known: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'armhf',
    ppc64: 'ppc64el',
    s390x: 's390x',
  };
  const deb = known[arch];
  if (deb === undefined) throw new Error(`no Debian architecture for Node's ${arch}`);
  return deb;
}

/** The file names of one build. */
export function artifactNames(version: string, arch: string = process.arch): { deb: string; tar: string } {
  return {
    deb: `fleet-ts_${version}_${debianArch(arch)}.deb`,
    tar: `fleet-ts-${version}-linux-${arch}.tar.gz`,
  };
}

/** package.json's version. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(REPO_DIR, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

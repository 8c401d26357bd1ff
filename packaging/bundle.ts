import { execFile } from 'node:child_process';
import { copyFileSync, chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { build, type Plugin } from 'esbuild';

const run = promisify(execFile);
const require = createRequire(import.meta.url);

/**
 * The single executable: dist/packaging/multicall.js and everything it imports bundled by esbuild
 * into one CommonJS file, made into a Node single executable application (the node binary that
 * builds it, with the bundle and its V8 code cache injected by postject).
 */

/** The postject sentinel Node looks for (docs: "Single executable applications"). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/**
 * Files read from disk at run time next to a module, which a single executable does not have:
 * - lib/version.js reads ../../package.json: the version is written into the bundle instead.
 * - etcd3's connection pool parses its .proto files with @grpc/proto-loader's loadSync at load
 *   time: they are parsed here, at build time, and the bundle carries the package definition
 *   (proto-loader's fromJSON takes the same options).
 */
function runtimeFiles(version: string): Plugin {
  return {
    name: 'fleet-ts-runtime-files',
    setup(b) {
      b.onLoad({ filter: /[\\/]dist[\\/]lib[\\/]version\.js$/ }, () => ({
        contents: `export const VERSION = ${JSON.stringify(version)};\n`,
        loader: 'js',
      }));
      b.onLoad({ filter: /[\\/]etcd3[\\/]lib[\\/]connection-pool\.js$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        const call = /\(0, proto_loader_1\.loadSync\)\(`\$\{__dirname\}\/\.\.\/proto\/rpc\.proto`, /;
        if (!call.test(source)) {
          throw new Error(`${args.path}: the loadSync call of rpc.proto was not found: etcd3 changed`);
        }
        const protoFile = join(dirname(args.path), '../proto/rpc.proto');
        const json = protoJson(protoFile);
        return {
          contents: source.replace(call, `(0, proto_loader_1.fromJSON)(${json}, `),
          loader: 'js',
        };
      });
    },
  };
}

/** rpc.proto and its imports as protobufjs JSON, for proto-loader's fromJSON. */
function protoJson(protoFile: string): string {
  const protobuf = require('protobufjs') as {
    Root: new () => { loadSync(file: string, o: object): { toJSON(): unknown } };
  };
  const root = new protobuf.Root().loadSync(protoFile, { keepCase: true });
  return JSON.stringify(root.toJSON());
}

/**
 * dbus-next requires these only for buses that fleetd does not use (abstract sockets, X11 and
 * launchd session buses), inside try/catch, and they are optional and not installed. Left as
 * externals, the single executable's require() would look for them on disk and Node would print
 * "Currently the require() provided to the main script embedded into single-executable
 * applications only supports loading built-in modules" into fleetd's journal at every start. They
 * are bundled instead as modules that fail to load as a missing module does, which dbus-next's
 * try/catch already handles (it then connects with net.createConnection).
 */
const OPTIONAL_ABSENT = ['usocket', 'x11', 'event-stream'];

function absentModules(names: readonly string[]): Plugin {
  const filter = new RegExp(`^(${names.join('|')})$`);
  return {
    name: 'fleet-ts-absent-modules',
    setup(b) {
      b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'absent-module' }));
      b.onLoad({ filter: /.*/, namespace: 'absent-module' }, (args) => ({
        contents:
          `const e = new Error(${JSON.stringify(`Cannot find module '${args.path}'`)});\n` +
          `e.code = 'MODULE_NOT_FOUND';\nthrow e;\n`,
        loader: 'js',
      }));
    },
  };
}

/** An npm package whose code is in the bundle. */
export interface BundledPackage {
  readonly name: string;
  readonly version: string;
  readonly license: string;
}

/** Bundles the multi-call entry into one CommonJS file; returns the npm packages it holds. */
export async function bundle(options: {
  repoDir: string;
  distDir: string;
  outFile: string;
  version: string;
}): Promise<BundledPackage[]> {
  const result = await build({
    entryPoints: [join(options.distDir, 'packaging/multicall.js')],
    outfile: options.outFile,
    absWorkingDir: options.repoDir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    keepNames: false,
    legalComments: 'none',
    logLevel: 'warning',
    plugins: [runtimeFiles(options.version), absentModules(OPTIONAL_ABSENT)],
    metafile: true,
  });
  const roots = new Set<string>();
  for (const input of Object.keys(result.metafile.inputs)) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m?.[1] !== undefined) roots.add(m[1]);
  }
  return [...roots]
    .map((root) => {
      const pkg = JSON.parse(readFileSync(join(options.repoDir, root, 'package.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      const str = (v: unknown): string => (typeof v === 'string' ? v : 'see the package');
      return { name: str(pkg['name']), version: str(pkg['version']), license: str(pkg['license']) };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Makes `outBinary` from the bundle: a copy of this node with the SEA blob injected. */
export async function makeExecutable(options: {
  bundleFile: string;
  workDir: string;
  outBinary: string;
  strip: boolean;
}): Promise<void> {
  mkdirSync(options.workDir, { recursive: true });
  const blob = join(options.workDir, 'sea-prep.blob');
  const config = join(options.workDir, 'sea-config.json');
  writeFileSync(
    config,
    JSON.stringify({
      main: options.bundleFile,
      output: blob,
      useCodeCache: true,
      disableExperimentalSEAWarning: true,
    }),
  );
  await run(process.execPath, ['--experimental-sea-config', config]);
  mkdirSync(dirname(options.outBinary), { recursive: true });
  copyFileSync(process.execPath, options.outBinary);
  chmodSync(options.outBinary, 0o755);
  if (options.strip) await run('strip', ['--strip-all', options.outBinary]);
  const postject = join(dirname(require.resolve('postject/package.json')), 'dist/cli.js');
  await run(process.execPath, [
    postject,
    options.outBinary,
    'NODE_SEA_BLOB',
    blob,
    '--sentinel-fuse',
    SEA_FUSE,
  ]);
}

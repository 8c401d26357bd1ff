// The entry point of the packaged binary (npm run package): one executable that is fleetd or
// fleetctl depending on the name it is run under, like busybox. /usr/bin/fleetctl is a link to
// /usr/bin/fleetd; argv[0] (process.argv0, not the resolved process.execPath) tells them apart.
//
// Each command's code is loaded with a dynamic import, so the bundle only evaluates the modules
// of the command that runs: `fleetctl version` does not load etcd, gRPC or D-Bus.
import { basename } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { programFor } from './program-name.js';

/**
 * The V8 flags dist/fleetd/main.js gets from its shebang, for a small long-running daemon. A
 * single executable takes no Node flags on its command line, so fleetd sets them itself before
 * its code loads:
 *   --no-concurrent-recompilation  optimizes hot functions on the main thread instead of
 *       background threads, whose compiler memory stays behind in their own malloc arenas after
 *       the work is done (about 6 MiB of RSS, not returned to the system).
 *   --optimize-for-size  makes V8 grow the old generation in small steps, so garbage from a burst
 *       of work (starting many units) does not stay in the RSS of an idle fleetd until V8's
 *       memory reducer runs, tens of seconds later. The price is more collections under load.
 * The shebang's third flag, --max-semi-space-size=2, sizes the young generation when the heap is
 * made, before any code runs, so it cannot be set here; passed in NODE_OPTIONS it would also make
 * V8 reject the executable's code cache (its flags must match the build's).
 */
const FLEETD_V8_FLAGS = ['--no-concurrent-recompilation', '--optimize-for-size'];

async function main(): Promise<void> {
  const program = programFor(process.argv0);
  if (program === 'fleetd') {
    for (const flag of FLEETD_V8_FLAGS) setFlagsFromString(flag);
    // fleetd/main.js runs fleetd when it is loaded and exits the process itself.
    await import('../fleetd/main.js');
    return;
  }
  if (program === 'fleetctl') {
    const { run } = await import('../fleetctl/program.js');
    process.exit(await run(process.argv.slice(2)));
  }
  process.stderr.write(
    `fleet-ts: run me as fleetd or fleetctl (a link named so), not as ${basename(process.argv0)}\n`,
  );
  process.exit(2);
}

void main();

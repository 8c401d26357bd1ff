#!/usr/bin/env node
// fleetctl entry point. The command set arrives with the fleetd/fleetctl issue; until then this
// binary answers version and help, and refuses everything else with a non-zero exit.
import { VERSION } from '../lib/version.js';

const args = process.argv.slice(2);
const first = args[0];
if (first === 'version' || first === '--version' || first === '-v') {
  process.stdout.write(`fleetctl version ${VERSION}\n`);
} else if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
  process.stdout.write(
    `fleetctl ${VERSION}: command-line interface to a fleet-ts cluster.\n` +
      'Commands are not available in this build yet; only "version" and "help" are.\n',
  );
} else {
  process.stderr.write(`fleetctl: unknown command "${first}" (this build only has "version" and "help")\n`);
  process.exitCode = 1;
}

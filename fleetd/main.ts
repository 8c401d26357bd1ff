#!/usr/bin/env node
// fleetd entry point. The daemon arrives with the fleetd issue; until then this binary answers
// --version and --help, and refuses to start with a non-zero exit.
import { VERSION } from '../lib/version.js';

const first = process.argv[2];
if (first === '--version' || first === 'version') {
  process.stdout.write(`fleetd version ${VERSION}\n`);
} else if (first === '--help' || first === '-h') {
  process.stdout.write(`fleetd ${VERSION}: the fleet-ts agent and engine. Not runnable in this build yet.\n`);
} else {
  process.stderr.write('fleetd: the daemon is not part of this build yet\n');
  process.exitCode = 1;
}

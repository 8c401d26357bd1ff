#!/usr/bin/env node
// fleetctl entry point: runs the CLI with this process's arguments, streams and environment, and
// exits with its status.
import { run } from './program.js';

process.exit(await run(process.argv.slice(2)));

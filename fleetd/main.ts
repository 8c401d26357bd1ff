#!/usr/bin/env -S node --max-semi-space-size=2 --no-concurrent-recompilation --optimize-for-size
// The Node flags keep an idle fleetd's memory small; fleetd/units/fleetd.service passes the same
// ones and explains them. (`env -S` splits them into separate arguments: coreutils 8.30 or later.)
// fleetd's entry point and composition root: the one place where the real etcd registry, D-Bus
// systemd manager, agent, engine and API server are constructed (fleetd.ts wires them).
import { Agent } from '../agent/agent.js';
import { DbusSystemdManager } from '../agent/dbus-systemd-manager.js';
import { detectPublicIp, readBootId, readMachineId } from '../agent/machine-identity.js';
import { Engine } from '../engine/engine.js';
import { systemClock } from '../lib/clock.js';
import { describeError } from '../lib/errors.js';
import { createLogger, type Logger } from '../lib/logger.js';
import { VERSION } from '../lib/version.js';
import { EtcdRegistry } from '../registry/etcd-registry.js';
import { ApiServer } from './api/server.js';
import { parseCommandLine, type RunCommandLine } from './config-command-line.js';
import { formatNotice, type ConfigNotice } from './config-notice.js';
import { DEFAULT_CONFIG_PATH, loadConfig, type LoadedConfig } from './config-loader.js';
import { usageLine, usageText } from './config-usage.js';
import { Fleetd } from './fleetd.js';
import type { FleetdComponents } from './fleetd-components.js';
import { AdjustableLogger, levelForVerbosity } from './log-level.js';
import { handleSignals } from './signals.js';

/** Exit status for an invalid command line or configuration (as Go's flag package). */
const EXIT_CONFIG = 2;

/** The real components. */
const components: FleetdComponents = {
  readMachineId: () => readMachineId(),
  readBootId: () => readBootId(),
  detectPublicIp: () => detectPublicIp(),
  createRegistry: ({ config, material, logger, metrics }) =>
    new EtcdRegistry({
      endpoints: config.etcdServers,
      prefix: config.etcdKeyPrefix,
      requestTimeoutMs: config.etcdRequestTimeoutMs,
      ...(material.etcdTls === undefined ? {} : { tls: material.etcdTls }),
      ...(config.etcdUsername === ''
        ? {}
        : { auth: { username: config.etcdUsername, password: config.etcdPassword } }),
      ...(metrics === undefined ? {} : { metrics }),
      logger,
    }),
  connectSystemd: ({ busAddress, unitsDirectory, logger }) =>
    DbusSystemdManager.connect({
      ...(busAddress === undefined ? {} : { busAddress }),
      unitsDirectory,
      logger,
    }),
  createAgent: (deps) => new Agent(deps),
  createEngine: (deps) => new Engine(deps),
  createApi: (deps) => new ApiServer(deps),
};

function printProblems(problems: readonly ConfigNotice[]): void {
  const lines = problems.map((p) => `  ${formatNotice(p)}`);
  process.stderr.write(
    `fleetd: invalid configuration:\n${lines.join('\n')}\nRun fleetd --help for the options.\n`,
  );
}

function logWarnings(log: Logger, loaded: LoadedConfig): void {
  log.info(loaded.fileNote, loaded.file === undefined ? {} : { file: loaded.file });
  for (const w of loaded.warnings) log.warn('configuration warning', { warning: formatNotice(w) });
}

/** Runs the daemon; resolves with an exit status when fleetd must exit before running. */
async function run(commandLine: RunCommandLine): Promise<number | undefined> {
  const loaded = await loadConfig({ commandLine, env: process.env });
  if (!loaded.ok) {
    printProblems(loaded.problems);
    return EXIT_CONFIG;
  }
  // The gate decides the level, so winston itself lets every level through.
  const logging = new AdjustableLogger(
    createLogger({ level: 'debug' }),
    levelForVerbosity(loaded.config.verbosity),
  );
  const log = logging.logger;
  logWarnings(log, loaded);

  const fleetd = new Fleetd({
    settings: loaded,
    components,
    clock: systemClock,
    logger: log,
    version: VERSION,
    setVerbosity: (verbosity) => {
      logging.level = levelForVerbosity(verbosity);
    },
    onFatal: () => {
      // Units keep running; systemd restarts fleetd (Restart=always), which adopts them.
      void fleetd.stop('restart').finally(() => process.exit(1));
    },
  });
  handleSignals({
    source: process,
    clock: systemClock,
    logger: log,
    exit: (code) => process.exit(code),
    target: {
      stop: (signal) => fleetd.shutdown(signal),
      status: () => ({ ...fleetd.status() }),
      reload: async () => {
        log.info(`Reloading configuration from ${commandLine.configPath ?? DEFAULT_CONFIG_PATH}`);
        const next = await loadConfig({ commandLine, env: process.env });
        if (!next.ok) {
          log.error('configuration not reloaded: it is invalid; keeping the running one', {
            problems: next.problems.map(formatNotice),
          });
          return;
        }
        logWarnings(log, next);
        await fleetd.reload(next);
      },
    },
  });

  try {
    await fleetd.start();
  } catch (err) {
    log.error('fleetd cannot start', { error: describeError(err) });
    await fleetd.stop();
    return 1;
  }
  return undefined;
}

async function main(argv: readonly string[]): Promise<number | undefined> {
  const commandLine = parseCommandLine(argv);
  switch (commandLine.kind) {
    case 'help':
      process.stdout.write(usageText());
      return 0;
    case 'version':
      process.stdout.write(`fleetd version ${VERSION}\n`);
      return 0;
    case 'positional':
      // fleet's words, then the usage.
      process.stderr.write(
        'fleetd takes no arguments. Did you mean to invoke fleetctl instead?\n' +
          `${usageLine()}\nRun fleetd --help for the options.\n`,
      );
      return 1;
    case 'invalid':
      printProblems(commandLine.problems);
      return EXIT_CONFIG;
    case 'run':
      return run(commandLine);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`fleetd: ${describeError(err)}\n`);
    process.exit(1);
  },
);

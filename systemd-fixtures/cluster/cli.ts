import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { describeError, FleetError } from '../../lib/errors.js';
import { isClean } from '../lab/lab-leftovers.js';
import { Lab } from '../lab/lab.js';
import { pollUntil } from '../lab/poll.js';
import { repoRoot } from '../repo-root.js';
import { FleetCluster, type ClusterMachine } from './fleet-cluster.js';

/**
 * The quick start's local cluster from a shell (`scripts/cluster` wraps it): `up` boots a
 * FleetCluster whose etcd keeps running after the command returns, starts the example units and
 * prints what fleetctl sees; `down` removes everything; `status`, `exec` and `pid1` look inside.
 * Every invocation finds the cluster through its state files.
 */
const USAGE = `Usage: node dist/systemd-fixtures/cluster/cli.js COMMAND [--name NAME] ...

  up [--machines N] [--recreate]   boot the cluster (or report the running one), start the
                                   examples, print fleetctl list-machines and list-units
  down                             stop and remove everything of the cluster
  status                           machines, etcd, fleetctl list-machines and list-units
  exec MACHINE -- CMD [ARG]...     run CMD inside MACHINE (m1, m2, ...) as root
  pid1 MACHINE                     print the host pid of MACHINE's systemd (for nsenter)

NAME defaults to quickstart.
`;

const OPTIONS = {
  name: { type: 'string', default: 'quickstart' },
  machines: { type: 'string', default: '3' },
  recreate: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The example units `up` starts, from examples/. web@1 is an instance of the web@ template. */
const EXAMPLES = ['hello-global.service', 'hello.service', 'web@1.service'];

async function main(argv: readonly string[]): Promise<number> {
  const dashDash = argv.indexOf('--');
  const command = dashDash === -1 ? [] : argv.slice(dashDash + 1);
  const { values, positionals } = parseArgs({
    args: dashDash === -1 ? [...argv] : argv.slice(0, dashDash),
    options: OPTIONS,
    allowPositionals: true,
  });
  const [verb, machine] = positionals;
  if (values.help === true || verb === undefined) {
    process.stdout.write(USAGE);
    return verb === undefined && values.help !== true ? 2 : 0;
  }
  const name = values.name;
  switch (verb) {
    case 'up':
      return up(name, Number(values.machines), values.recreate === true);
    case 'down':
      return down(name);
    case 'status':
      return status(name);
    case 'exec': {
      if (machine === undefined || command.length === 0) return usageError('exec needs MACHINE -- CMD...');
      const result = await FleetCluster.open(name).exec(machine, command);
      process.stdout.write(result.stdout);
      process.stderr.write(result.stderr);
      return result.code;
    }
    case 'pid1': {
      if (machine === undefined) return usageError('pid1 needs MACHINE');
      const m = FleetCluster.open(name).machine(machine);
      if (!m.running || m.pid1 === undefined)
        throw new FleetError('HARNESS_COMMAND_FAILED', `${m.name} is not running`);
      process.stdout.write(`${m.pid1}\n`);
      return 0;
    }
    default:
      return usageError(`unknown command "${verb}"`);
  }
}

async function up(name: string, machines: number, recreate: boolean): Promise<number> {
  const running = recreate ? undefined : await runningCluster(name);
  if (running !== undefined) {
    say(`Cluster ${name} is already up; showing it (scripts/cluster up --recreate starts it anew).`);
    await show(running);
    await printHowTo(running);
    await running.close();
    return 0;
  }
  say(`Starting cluster ${name}: ${machines} machines with systemd, etcd, fleetd.service in each ...`);
  const started = Date.now();
  const cluster = await FleetCluster.start({
    name,
    machines,
    keepEtcdOnExit: true,
    metadata: (i) => ({ machine: `m${i}` }),
  });
  say(`Cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  try {
    await startExamples(cluster);
    await show(cluster);
    await printHowTo(cluster);
  } finally {
    await cluster.close();
  }
  return 0;
}

/** The cluster of that name if it is up and healthy; one that is there but broken is removed. */
async function runningCluster(name: string): Promise<FleetCluster | undefined> {
  let cluster: FleetCluster;
  try {
    cluster = FleetCluster.open(name);
  } catch (err) {
    if (err instanceof FleetError) return undefined;
    throw err;
  }
  const broken = [
    ...cluster.machines.filter((m) => !m.running).map((m) => `${m.shortName} is not running`),
    ...cluster.etcdMembers.filter((m) => !m.running).map((m) => `etcd member ${m.name} is not running`),
  ];
  if (broken.length === 0) {
    try {
      await cluster.waitUntilReady({ timeoutMs: 20_000 });
      return cluster;
    } catch (err) {
      broken.push(describeError(err));
    }
  }
  await cluster.close();
  say(`Cluster ${name} is there but broken (${broken.join('; ')}): removing it to start again.`);
  await FleetCluster.removeLeftovers(name);
  return undefined;
}

async function startExamples(cluster: FleetCluster): Promise<void> {
  const files = EXAMPLES.map((unit) => join(repoRoot(), 'examples', unit));
  say(`\n$ fleetctl start ${EXAMPLES.map((u) => `examples/${u}`).join(' ')}`);
  const r = await cluster.fleetctl('m1', ['start', ...files], { timeoutMs: 120_000 });
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  if (r.code !== 0) throw new FleetError('HARNESS_COMMAND_FAILED', `fleetctl start exited with ${r.code}`);
  // fleetctl start returns once the units are launched; wait until systemd reports them running.
  const registry = cluster.registry();
  const expected = new Map([
    ['hello-global.service', cluster.machines.length],
    ['hello.service', 1],
    ['web@1.service', 1],
  ]);
  let last = '';
  const done = await pollUntil(
    async () => {
      const states = await registry.listUnitStates();
      const pending = [...expected].filter(
        ([unit, count]) =>
          states.filter((s) => s.unit === unit && s.activeState === 'active' && s.subState === 'running')
            .length < count,
      );
      last = pending.map(([unit]) => unit).join(', ');
      return pending.length === 0 ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
  if (done === undefined) say(`(still not active/running after 60 s: ${last})`);
}

async function show(cluster: FleetCluster): Promise<void> {
  for (const args of [['list-machines'], ['list-units']]) {
    say(`\n$ fleetctl ${args.join(' ')}`);
    const r = await cluster.fleetctl(firstRunning(cluster).shortName, args);
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
  }
}

async function printHowTo(cluster: FleetCluster): Promise<void> {
  const m1 = cluster.machine('m1');
  const web = (await cluster.registry().listUnitStates({ unit: 'web@1.service' }))
    .map((s) => cluster.machineById(s.machine)?.ip)
    .find((ip) => ip !== undefined);
  const lines = [
    '',
    `The cluster keeps running: ${cluster.machines.map((m) => `${m.name} (${m.ip})`).join(', ')};`,
    `etcd at ${cluster.machineEtcdEndpoints.join(',')} (${cluster.etcdEndpoints.join(',')} from this host).`,
    '',
    'fleetctl from this host (it talks to fleetd on m1; --on m2 picks another machine):',
    '  scripts/cluster fleetctl list-units',
    '  scripts/cluster fleetctl start examples/web@2.service',
    '  scripts/cluster fleetctl --on m2 list-machines',
    '  scripts/cluster fleetctl status hello.service        (no ssh: fleetd relays it)',
    '  scripts/cluster fleetctl journal hello-global.service',
    `  dist/package/fleetctl --endpoint ${m1.endpoint} list-units`,
    ...(web === undefined ? [] : [`web@1 answers on port 8081 of its machine: curl http://${web}:8081/`]),
    '',
    'Inside a machine (the package is installed there: fleetctl is on PATH, and its default endpoint works):',
    '  scripts/cluster shell m1     then: fleetctl list-units',
    '  scripts/cluster exec m1 -- journalctl -t fleetd --no-pager -n 20',
    '',
    'Status: scripts/cluster status',
    'Tear down: scripts/cluster down',
  ];
  say(lines.join('\n'));
}

async function down(name: string): Promise<number> {
  let cluster: FleetCluster | undefined;
  try {
    cluster = FleetCluster.open(name);
  } catch (err) {
    // No state file: nothing to stop in order, but leftovers may still need removing.
    if (!(err instanceof FleetError)) throw err;
  }
  if (cluster === undefined) await FleetCluster.removeLeftovers(name);
  else await cluster.destroy();
  const leftovers = await Lab.findLeftovers(name);
  if (!isClean(leftovers)) {
    say(`Cluster ${name}: something is left: ${JSON.stringify(leftovers)}`);
    return 1;
  }
  say(`Cluster ${name} is down: no machines, links, namespaces or etcd left.`);
  return 0;
}

async function status(name: string): Promise<number> {
  let cluster: FleetCluster;
  try {
    cluster = FleetCluster.open(name);
  } catch (err) {
    if (!(err instanceof FleetError)) throw err;
    say(`Cluster ${name} is not up (scripts/cluster up starts it).`);
    return 1;
  }
  try {
    for (const m of cluster.machines) {
      const state = !m.running ? 'killed' : m.cut ? 'cut' : 'running';
      say([m.name, m.ip, m.machineId, state, m.endpoint].join('\t'));
    }
    for (const e of cluster.etcdMembers)
      say([e.name, e.clientUrl, e.running ? 'running' : 'stopped'].join('\t'));
    await show(cluster);
  } finally {
    await cluster.close();
  }
  return 0;
}

function firstRunning(cluster: FleetCluster): ClusterMachine {
  const m = cluster.machines.find((x) => x.running && !x.cut);
  if (m === undefined)
    throw new FleetError('HARNESS_COMMAND_FAILED', `No machine of ${cluster.name} is running`);
  return m;
}

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

function usageError(message: string): number {
  process.stderr.write(`fleet-cluster: ${message}\n\n${USAGE}`);
  return 2;
}

// `scripts/cluster status | head` closes our stdout early: finish the command all the same.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') process.exitCode = 1;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`fleet-cluster: ${describeError(err)}\n`);
    process.exitCode = 1;
  },
);

import { Command, CommanderError } from 'commander';
import { describeError, isFleetError } from '../lib/errors.js';
import { VERSION } from '../lib/version.js';
import { normalizeArgv } from './argv.js';
import { registerCat } from './commands/cat.js';
import { registerCompletion } from './commands/completion.js';
import { registerDestroy } from './commands/destroy.js';
import { registerDrain } from './commands/drain.js';
import { registerEvents } from './commands/events.js';
import { registerFdForward } from './commands/fd-forward.js';
import { registerHelp } from './commands/help.js';
import { registerJournal } from './commands/journal.js';
import { registerListMachines } from './commands/list-machines.js';
import { registerListUnitFiles } from './commands/list-unit-files.js';
import { registerListUnits } from './commands/list-units.js';
import { registerLoad } from './commands/load.js';
import { registerRestart } from './commands/restart.js';
import { registerSsh } from './commands/ssh.js';
import { registerStart } from './commands/start.js';
import { registerStatus } from './commands/status.js';
import { registerStop } from './commands/stop.js';
import { registerSubmit } from './commands/submit.js';
import { registerUndrain } from './commands/undrain.js';
import { registerUnload } from './commands/unload.js';
import { registerVerify } from './commands/verify.js';
import { registerVersion } from './commands/version.js';
import { Context, type RunOptions } from './context.js';
import { addGlobalOptions } from './global-options.js';
import { formatHelp } from './help.js';

export type { RunOptions } from './context.js';

/** Every command, in the order help lists them. */
const COMMANDS = [
  registerCat,
  registerCompletion,
  registerDestroy,
  registerDrain,
  registerEvents,
  registerFdForward,
  registerHelp,
  registerJournal,
  registerListMachines,
  registerListUnitFiles,
  registerListUnits,
  registerLoad,
  registerRestart,
  registerSsh,
  registerStart,
  registerStatus,
  registerStop,
  registerSubmit,
  registerUndrain,
  registerUnload,
  registerVerify,
  registerVersion,
] as const;

/**
 * Builds the commander program for one run: global flags, every command, fleet-style help, and
 * output and exits routed through the context (commander never calls `process.exit`).
 */
export function buildProgram(ctx: Context): Command {
  const program = new Command('fleetctl');
  program
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
      // commander says `error: ...`; fleet (cobra) said `Error: ...`.
      outputError: (s, write) => {
        write(s.replace(/^error: /, 'Error: '));
      },
    })
    .configureHelp({ formatHelp })
    .helpCommand(false)
    .helpOption('-h, --help', 'Show help.')
    .version(`fleetctl version ${VERSION}`, '-v, --version', 'Print the version and exit.')
    .argument('[command...]')
    .showHelpAfterError("Run 'fleetctl help' for usage.");
  addGlobalOptions(program);
  for (const register of COMMANDS) register(program, ctx);
  program.action((words: string[]) => {
    const [word] = words;
    if (word === undefined) {
      program.outputHelp();
      return;
    }
    ctx.err(`Error: unknown command ${JSON.stringify(word)} for "fleetctl"`);
    ctx.err("Run 'fleetctl help' for usage.");
    ctx.exitCode = 1;
  });
  return program;
}

/**
 * Runs fleetctl with `argv` (without the node and script paths) and resolves with the exit code:
 * 0 on success, the remote command's status for ssh/status/journal, and 1 for every error,
 * including usage errors (fleet exited 0 for those). Never throws and never exits the process,
 * so tests run it in-process with their own streams and environment.
 */
export async function run(argv: readonly string[], options: RunOptions = {}): Promise<number> {
  const ctx = new Context(options);
  const program = buildProgram(ctx);
  ctx.attach(program);
  try {
    await program.parseAsync(normalizeArgv(argv, program), { from: 'user' });
    return ctx.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 1;
    ctx.err(isFleetError(err, 'USAGE_INVALID') ? `Error: ${err.message}` : `Error: ${describeError(err)}`);
    return 1;
  } finally {
    ctx.close();
  }
}

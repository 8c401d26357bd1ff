import { Command } from 'commander';
import type { Context } from './context.js';

/**
 * The shape every `commands/<name>.ts` shares: a commander subcommand with fleet's name, summary,
 * usage line and long description, and an async body that returns the exit code.
 */

/** What help shows about a command. */
export interface CommandSpec {
  readonly name: string;
  /** One line, for the `COMMANDS:` list. */
  readonly summary: string;
  /** The arguments part of the usage line, e.g. `[--no-block|--block-attempts=N] UNIT...`. */
  readonly usage: string;
  /** The `DESCRIPTION:` text, lines separated by `\n`. */
  readonly description: string;
}

/** The body of a command: its operands (after `--`, too) and the command; returns the exit code. */
export type CommandBody = (args: string[], cmd: Command) => Promise<number>;

/** Adds a subcommand to the program, taking any number of operands. */
export function defineCommand(program: Command, spec: CommandSpec): Command {
  return program
    .command(spec.name)
    .summary(spec.summary)
    .description(spec.description)
    .usage(spec.usage)
    .argument('[args...]')
    .showHelpAfterError(`Run 'fleetctl help ${spec.name}' for usage.`);
}

/** Installs the body as the command's action; its exit code lands in `ctx.exitCode`. */
export function onRun(cmd: Command, ctx: Context, body: CommandBody): Command {
  return cmd.action(async (...params: unknown[]) => {
    const self = params.at(-1);
    const command = self instanceof Command ? self : cmd;
    ctx.exitCode = await body([...command.args], command);
  });
}

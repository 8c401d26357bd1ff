import type { Command, Option } from 'commander';
import { FleetError } from '../lib/errors.js';
import { parseGoBool } from './global-options.js';

/**
 * What the command line needs before commander reads it, to behave like fleet's cobra/pflag:
 * unique command prefixes (`list-m` is `list-machines`), `--h` as `--help`, booleans written
 * `--flag=true` / `--flag=false`, which commander does not know (each boolean has a hidden twin,
 * see flags.ts, that `=false` maps onto), and command flags written before the command
 * (`fleetctl --no-block stop X`, as fleet took them), which move behind the command word.
 */

/** The command `word` names: an exact name or alias, else the only command it is a prefix of. */
export function resolveCommand(program: Command, word: string): Command | undefined {
  const exact = program.commands.find((c) => c.name() === word || c.aliases().includes(word));
  if (exact !== undefined) return exact;
  if (word === '') return undefined;
  const candidates = program.commands.filter((c) => c.name().startsWith(word));
  if (candidates.length > 1) {
    const names = candidates.map((c) => c.name()).join(', ');
    throw new FleetError('USAGE_INVALID', `ambiguous command ${JSON.stringify(word)}: could be ${names}`);
  }
  return candidates[0];
}

function findOption(name: string, commands: readonly (Command | undefined)[]): Option | undefined {
  for (const cmd of commands) {
    const found = cmd?.options.find((o) => o.long === name || o.short === name);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The twin of a boolean flag: `--full` <-> `--no-full`, `--no-block` <-> `--block`. */
function twinOf(long: string): string {
  return long.startsWith('--no-') ? `--${long.slice(5)}` : `--no-${long.slice(2)}`;
}

/** Any command's option of that name (for flags written before the command is known). */
function anyCommandOption(program: Command, name: string): Option | undefined {
  return findOption(name, program.commands);
}

/**
 * Moves command flags that stand before the command word behind it: `--no-block stop X` becomes
 * `stop --no-block X`. A flag is a command flag when the program does not know it and some
 * command does; its value moves with it. Global flags and unknown ones stay where they are (an
 * unknown one still fails as commander reports it).
 */
export function commandFlagsAfterCommand(argv: readonly string[], program: Command): string[] {
  const before: string[] = [];
  const moved: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] ?? '';
    if (token === '--' || !token.startsWith('-') || token === '-') {
      if (token === '--' || moved.length === 0) return [...argv];
      return [...before, token, ...moved, ...argv.slice(i + 1)];
    }
    const name = token.includes('=') ? token.slice(0, token.indexOf('=')) : token;
    const global = findOption(name === '--h' ? '--help' : name, [program]);
    const option = global ?? anyCommandOption(program, name);
    const takesValue = option?.required === true && !token.includes('=') && argv[i + 1] !== undefined;
    const words = takesValue ? [token, argv[i + 1] ?? ''] : [token];
    if (takesValue) i++;
    if (global === undefined && option !== undefined) moved.push(...words);
    else before.push(...words);
  }
  return [...argv];
}

/**
 * Rewrites argv as described in the module comment. Everything after `--` is left alone. Throws
 * `USAGE_INVALID` for an ambiguous command prefix or a boolean flag given a non-boolean value.
 */
export function normalizeArgv(given: readonly string[], program: Command): string[] {
  const argv = commandFlagsAfterCommand(given, program);
  const out: string[] = [];
  let command: Command | undefined;
  let commandSeen = false;
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] ?? '';
    if (token === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (token === '--h') {
      out.push('--help');
      continue;
    }
    if (token.startsWith('--') && token.includes('=')) {
      const at = token.indexOf('=');
      const name = token.slice(0, at);
      const value = token.slice(at + 1);
      const option = findOption(name, [command, program]);
      if (option !== undefined && !option.required && !option.optional) {
        const on = parseGoBool(value);
        if (on === undefined) {
          throw new FleetError(
            'USAGE_INVALID',
            `invalid argument ${JSON.stringify(value)} for ${JSON.stringify(name)} flag: not a boolean (use true or false)`,
          );
        }
        out.push(on ? name : twinOf(name));
        continue;
      }
      out.push(token);
      continue;
    }
    if (token.startsWith('-') && token !== '-') {
      out.push(token);
      const option = findOption(token, [command, program]);
      const next = argv[i + 1];
      if (option?.required === true && next !== undefined) {
        out.push(next);
        i++;
      }
      continue;
    }
    if (!commandSeen) {
      commandSeen = true;
      command = resolveCommand(program, token);
      out.push(command?.name() ?? token);
      continue;
    }
    out.push(token);
  }
  return out;
}

import { InvalidArgumentError, Option, type Command } from 'commander';

/**
 * Per-command flags and their values. Booleans follow pflag: `--full`, `--full=true` and
 * `--full=false` all work (argv.ts rewrites the `=value` forms onto the hidden twin each boolean
 * gets here). fleet's long-only one-letter aliases (`--l`, `--f`, `--A`) are kept, hidden, next to
 * working short flags (`-l`, `-f`, `-A`), which fleet declared but never honoured.
 */

/**
 * Adds a boolean flag. `flags` is commander's syntax (`-l, --full` or `--no-block`); a `--no-x`
 * flag defaults to x = true, any other to false. `aliases` are extra hidden long names.
 */
export function boolFlag(
  cmd: Command,
  flags: string,
  description: string,
  aliases: readonly string[] = [],
): Command {
  const option = new Option(flags, description);
  const long = option.long ?? '';
  cmd.addOption(option.negate ? option.default(true, 'false') : option.default(undefined, 'false'));
  const twin = long.startsWith('--no-') ? `--${long.slice(5)}` : `--no-${long.slice(2)}`;
  cmd.addOption(new Option(twin).hideHelp());
  for (const alias of aliases) cmd.addOption(new Option(`--${alias}`).hideHelp());
  return cmd;
}

/** Go's `strconv.Atoi` for an int flag; commander shows the message as an invalid argument. */
export function parseIntArg(value: string): number {
  if (!/^[+-]?\d+$/.test(value)) throw new InvalidArgumentError('Not an integer.');
  return Number(value);
}

/** Adds an integer flag with a default. */
export function intFlag(cmd: Command, flags: string, description: string, fallback: number): Command {
  return cmd.addOption(
    new Option(flags, description).argParser(parseIntArg).default(fallback, String(fallback)),
  );
}

/** Adds a string flag with a default. */
export function stringFlag(cmd: Command, flags: string, description: string, fallback: string): Command {
  return cmd.addOption(new Option(flags, description).default(fallback, JSON.stringify(fallback)));
}

/** True when the boolean option (or one of its aliases) is set. */
export function flagSet(cmd: Command, key: string, aliases: readonly string[] = []): boolean {
  return [key, ...aliases].some((k) => cmd.getOptionValue(k) === true);
}

/** A string option's value, or `fallback`. */
export function stringValue(cmd: Command, key: string, fallback = ''): string {
  const v: unknown = cmd.getOptionValue(key);
  return typeof v === 'string' ? v : fallback;
}

/** An integer option's value, or `fallback`. */
export function intValue(cmd: Command, key: string, fallback: number): number {
  const v: unknown = cmd.getOptionValue(key);
  return typeof v === 'number' ? v : fallback;
}

/** `--block-attempts` and `--no-block`, as load, start, stop, unload and destroy have them. */
export function addBlockFlags(cmd: Command, what: string): Command {
  intFlag(
    cmd,
    '--block-attempts <N>',
    `Wait until the units are ${what}, performing up to N attempts of 2 seconds before giving up. A value of 0 indicates no limit. Does not apply to global units.`,
    0,
  );
  return boolFlag(
    cmd,
    '--no-block',
    `Do not wait until the units have been ${what} before exiting. Always the case for global units.`,
  );
}

/** `--sign`: fleet's deprecated signing flag, accepted and ignored with a warning. */
export function addSignFlag(cmd: Command): Command {
  return boolFlag(cmd, '--sign', 'DEPRECATED: unit signing is not supported; accepted and ignored.');
}

/** `--replace`. */
export function addReplaceFlag(cmd: Command, description: string): Command {
  return boolFlag(cmd, '--replace', description);
}

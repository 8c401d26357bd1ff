import { parseArgs } from 'node:util';

import { DEPRECATED_OPTIONS, OPTION_LIST, OPTIONS_BY_NAME, flagName } from './config-options.js';
import { hint, notice, type ConfigNotice, type ConfigSource } from './config-notice.js';

/** A `--option value` from the command line. */
export interface FlagSetting {
  readonly name: string;
  readonly flag: string;
  readonly value: string;
}

/** What the command line asks for. */
export type CommandLine =
  | { readonly kind: 'help' }
  | { readonly kind: 'version' }
  | { readonly kind: 'positional'; readonly args: readonly string[] }
  | { readonly kind: 'invalid'; readonly problems: readonly ConfigNotice[] }
  | {
      readonly kind: 'run';
      /** `--config PATH`, when given. */
      readonly configPath: string | undefined;
      readonly settings: readonly FlagSetting[];
    };

/** The command line of a run, as `resolveConfig` takes it. */
export type RunCommandLine = Extract<CommandLine, { kind: 'run' }>;

/** parseArgs' option declarations: every option as a flag, deprecated ones as booleans. */
function argDeclarations(): Record<string, { type: 'string' | 'boolean'; short?: string }> {
  const declarations: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    config: { type: 'string' },
    version: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const o of OPTION_LIST)
    declarations[flagName(o.name).slice(2)] = { type: o.boolean ? 'boolean' : 'string' };
  // A deprecated flag never takes the next argument as its value (it may be `--enable-grpc`).
  for (const name of Object.keys(DEPRECATED_OPTIONS))
    declarations[flagName(name).slice(2)] = { type: 'boolean' };
  return declarations;
}

/**
 * Reads fleetd's command line (without node and the script): `--config PATH`, `--version`,
 * `--help`, and `--<option> VALUE` or `--<option>=VALUE` for every option (booleans: `--flag`,
 * `--flag=false`). Only long options with two dashes; Go's `-config` form is refused with a hint.
 */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  const { tokens } = parseArgs({
    args: [...argv],
    options: argDeclarations(),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const problems: ConfigNotice[] = [];
  const settings: FlagSetting[] = [];
  const positionals: string[] = [];
  const seenShort = new Set<number>();
  let configPath: string | undefined;
  let help = false;
  let version = false;

  for (const token of tokens) {
    if (token.kind === 'positional') {
      positionals.push(token.value);
      continue;
    }
    if (token.kind !== 'option') continue;
    const raw = argv[token.index] ?? token.rawName;
    if (!raw.startsWith('--')) {
      // `-abc` comes back as one token per letter: answer once for the argument.
      if (seenShort.has(token.index)) continue;
      seenShort.add(token.index);
      if (raw === '-h') help = true;
      else {
        const word = raw.slice(1).split('=')[0] ?? '';
        const long =
          word.length > 1 &&
          (word === 'config' || word === 'version' || OPTIONS_BY_NAME.has(word.replaceAll('-', '_')));
        problems.push(
          notice(
            { kind: 'flag', flag: `-${word}` },
            undefined,
            long ? `use --${word} (long options take two dashes)` : 'unknown flag',
          ),
        );
      }
      continue;
    }
    const flag = token.rawName;
    const source: ConfigSource = { kind: 'flag', flag };
    const value = token.value;
    const fromNextArg = token.inlineValue === false;
    if (token.name === 'help' || token.name === 'version') {
      if (value !== undefined) problems.push(notice(source, undefined, 'takes no value'));
      else if (token.name === 'help') help = true;
      else version = true;
      continue;
    }
    if (token.name === 'config') {
      if (value === undefined || value === '' || (fromNextArg && value.startsWith('-'))) {
        problems.push(notice(source, undefined, 'needs the path of a config file'));
      } else configPath = value;
      continue;
    }
    const name = token.name.replaceAll('-', '_');
    if (flagName(name) !== flag) {
      const render = (o: string): string => flagName(o);
      problems.push(notice(source, undefined, `unknown flag${hint(name, render)}`));
      continue;
    }
    const option = OPTIONS_BY_NAME.get(name);
    if (option === undefined && !Object.hasOwn(DEPRECATED_OPTIONS, name)) {
      problems.push(notice(source, undefined, `unknown flag${hint(name, flagName)}`));
      continue;
    }
    const isBoolean = option === undefined || option.boolean;
    if (value === undefined) {
      if (isBoolean) settings.push({ name, flag, value: 'true' });
      else
        problems.push(
          notice(source, name, `needs a value: ${flag} ${option.metavar} or ${flag}=${option.metavar}`),
        );
      continue;
    }
    if (fromNextArg && value.startsWith('-')) {
      problems.push(
        notice(
          source,
          name,
          `needs a value, got the flag ${JSON.stringify(value)}; to give a value that starts with -, write ${flag}=VALUE`,
        ),
      );
      continue;
    }
    settings.push({ name, flag, value });
  }

  if (problems.length > 0) return { kind: 'invalid', problems };
  if (help) return { kind: 'help' };
  if (version || (positionals.length === 1 && positionals[0] === 'version')) return { kind: 'version' };
  if (positionals.length > 0) return { kind: 'positional', args: positionals };
  return { kind: 'run', configPath, settings };
}

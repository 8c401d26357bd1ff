import { suggestOption } from './config-options.js';

/** Where a configuration setting came from, and the problems and warnings that name it. */

/** Where a setting came from. */
export type ConfigSource =
  | { readonly kind: 'default' }
  | { readonly kind: 'file'; readonly path: string; readonly line: number }
  | { readonly kind: 'env'; readonly variable: string }
  | { readonly kind: 'flag'; readonly flag: string };

/** A setting that cannot be used (fatal), or one that is used with a warning. */
export interface ConfigNotice {
  readonly source: ConfigSource | undefined;
  /** The fleet.conf name of the option concerned, when there is one. */
  readonly option: string | undefined;
  readonly message: string;
}

/** Renders a source for messages: `/etc/fleet/fleet.conf line 3`, `FLEET_AGENT_TTL`, `--agent-ttl`. */
export function describeSource(source: ConfigSource): string {
  switch (source.kind) {
    case 'default':
      return 'default';
    case 'file':
      return `${source.path} line ${source.line}`;
    case 'env':
      return `environment variable ${source.variable}`;
    case 'flag':
      return `flag ${source.flag}`;
  }
}

/** Renders a problem or warning on one line: `<source>: <option>: <why>`. */
export function formatNotice(notice: ConfigNotice): string {
  const parts = [
    notice.source === undefined ? undefined : describeSource(notice.source),
    notice.option,
    notice.message,
  ];
  return parts.filter((p) => p !== undefined).join(': ');
}

/** A notice about `option` from `source`. */
export const notice = (
  source: ConfigSource | undefined,
  option: string | undefined,
  message: string,
): ConfigNotice => ({
  source,
  option,
  message,
});

/** `did you mean ...?` for an unknown name, rendered the way the user wrote it. */
export function hint(name: string, render: (option: string) => string): string {
  const suggestion = suggestOption(name);
  return suggestion === undefined ? '' : `; did you mean ${render(suggestion)}?`;
}

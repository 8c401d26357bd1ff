import { DEPRECATED_OPTIONS, OPTION_LIST, envName, flagName } from '../fleetd/config-options.js';

/**
 * The /etc/fleet/fleet.conf the package installs: every option of fleetd's table
 * (fleetd/config-options.ts, the table behind `fleetd --help`), commented out with its default,
 * so the file changes nothing until a line is uncommented. A conffile: dpkg keeps the operator's
 * edits across upgrades.
 */

/** Wraps `text` into `# ` comment lines of at most `width` columns. */
function commentLines(text: string, width = 100): string[] {
  const lines: string[] = [];
  let line = '#';
  for (const word of text.split(/\s+/)) {
    if (line !== '#' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = '#';
    }
    line = `${line} ${word}`;
  }
  if (line !== '#') lines.push(line);
  return lines;
}

/** A value as fleet.conf writes it: quoted when it is empty or holds `#`, `;` or spaces. */
function confValue(value: string): string {
  return value === '' || /[#;\s"]/.test(value) ? `"${value}"` : value;
}

export function defaultFleetConf(): string {
  const out = [
    '# fleetd configuration (fleet.conf). Read when fleetd starts and on `systemctl reload fleetd`.',
    '#',
    '# Every option is shown commented out with its default: uncomment a line to change it.',
    '# Format: one `key=value` per line at the top level, `#` or `;` starts a comment line,',
    '# values with spaces or commas in double quotes. Each option can also be set with a',
    '# FLEET_<OPTION> environment variable or a --<option> flag, which win over this file.',
    '# `fleetd --help` and `man fleetd` describe the same options.',
  ];
  for (const o of OPTION_LIST) {
    out.push(
      '',
      ...commentLines(`${o.meaning}. (${envName(o.name)}, ${flagName(o.name)})`),
      `#${o.name}=${confValue(o.defaultText)}`,
    );
  }
  out.push(
    '',
    ...commentLines(
      `Options of fleet that fleetd accepts and ignores with a warning: ${Object.keys(DEPRECATED_OPTIONS).join(', ')}.`,
    ),
  );
  return `${out.join('\n')}\n`;
}

import { createHash } from 'node:crypto';

import { fail, ok, type UnitProblem, type UnitResult } from './problems.js';
import { groupBySection, parseUnitFile, type UnitFile, type UnitOption } from './unit-file.js';

/**
 * fleet's canonical form of a unit file (go-systemd `Serialize`, docs/fleet-compat.md §2.6): sections in
 * order of first appearance, every option of a section grouped under its first occurrence in
 * file order, `[Section]` then `Name=Value` lines, one blank line between sections and none
 * after the last. No options serialize to the empty string. This is what `fleetctl cat` shows
 * and what the agent writes to disk.
 */
export function serializeUnitFile(file: UnitFile | readonly UnitOption[]): string {
  const options = 'options' in file ? file.options : file;
  const parts: string[] = [];
  for (const [section, group] of groupBySection(options)) {
    let text = `[${section}]\n`;
    for (const o of group) text += `${o.name}=${o.value}\n`;
    parts.push(text);
  }
  return parts.join('\n');
}

/**
 * The unit hash: SHA-1 over the canonical form, 40 lowercase hex characters. Two units are the
 * same unit exactly when their hashes are equal; it drives replace detection and agent reloads.
 * Equal to fleet's hash for every unit fleet could read (ours joins line continuations the way
 * systemd does, where fleet kept the backslash and newline in the value).
 */
export function unitHash(file: UnitFile | readonly UnitOption[]): string {
  return createHash('sha1').update(serializeUnitFile(file), 'utf8').digest('hex');
}

/** The 7-character short hash `fleetctl list-unit-files` shows. */
export function shortHash(hash: string): string {
  return hash.slice(0, 7);
}

/**
 * Builds a unit file from options given as data (the HTTP API's `options` array) and proves
 * that they survive the trip through the canonical form unchanged: a section or name that the
 * parser would read differently (an `=` in a name, a newline in a value, a name that starts a
 * comment) is reported as a problem instead of being stored as something else.
 */
export function unitFileFromOptions(
  options: readonly { readonly section: string; readonly name: string; readonly value: string }[],
  file: string,
): UnitResult<UnitFile> {
  const built: UnitOption[] = options.map((o) => ({
    section: o.section,
    name: o.name,
    value: o.value,
    line: 0,
  }));
  const parsed = parseUnitFile(serializeUnitFile(built), file);
  if (!parsed.ok) return parsed;
  const problems: UnitProblem[] = [];
  const canonical = [...groupBySection(built).values()].flat();
  canonical.forEach((o, i) => {
    const back = parsed.value.options[i];
    if (back?.section !== o.section || back.name !== o.name || back.value !== o.value) {
      problems.push({
        file,
        section: o.section,
        option: o.name,
        message: `cannot be written as a unit file line unchanged (value ${JSON.stringify(o.value)})`,
      });
    }
  });
  if (parsed.value.options.length !== canonical.length && problems.length === 0) {
    problems.push({ file, message: 'options do not survive serialization unchanged' });
  }
  return problems.length > 0 ? fail(problems) : ok({ options: canonical });
}

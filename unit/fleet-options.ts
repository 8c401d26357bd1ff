import { parseSystemdBoolean } from './booleans.js';
import { globMatches, isValidGlob } from './glob.js';
import type { UnitProblem } from './problems.js';
import { expandSpecifiers } from './specifiers.js';
import type { UnitFile, UnitOption } from './unit-file.js';
import { isTemplate, validateUnitName } from './unit-name.js';

/** The section fleet reads its scheduling options from. */
export const FLEET_SECTION = 'X-Fleet';

/** One MachineMetadata key and the values any one of which a machine must have for it. */
export interface MetadataRequirement {
  readonly key: string;
  readonly values: readonly string[];
}

/**
 * The scheduling options of a unit, from its `[X-Fleet]` section, with specifiers expanded.
 * Lists keep file order with duplicates removed.
 */
export interface FleetOptions {
  /** Run only on this machine (full machine ID, or fleet's 8-character short ID). */
  readonly machineId?: string;
  /** Run only where every one of these units is scheduled (exact unit names). */
  readonly machineOf: readonly string[];
  /** AND across keys, OR within one key's values. */
  readonly machineMetadata: readonly MetadataRequirement[];
  /** Globs: never share a machine with a unit these match (checked in both directions). */
  readonly conflicts: readonly string[];
  /** Run on every eligible machine; the engine leaves placement to the agents. */
  readonly global: boolean;
  /** Globs: push units these match off the machine this unit is placed on. */
  readonly replaces: readonly string[];
}

export const NO_FLEET_OPTIONS: FleetOptions = {
  machineOf: [],
  machineMetadata: [],
  conflicts: [],
  global: false,
  replaces: [],
};

type OptionKind = 'machineId' | 'machineOf' | 'machineMetadata' | 'conflicts' | 'global' | 'replaces';

interface KeySpec {
  readonly kind: OptionKind;
  /** The current name to suggest when the key is a deprecated alias. */
  readonly deprecatedFor?: string;
}

/** Every key fleet accepts in [X-Fleet]; keys are case-sensitive, as in fleet. */
const KEYS: ReadonlyMap<string, KeySpec> = new Map<string, KeySpec>([
  ['MachineID', { kind: 'machineId' }],
  ['MachineOf', { kind: 'machineOf' }],
  ['MachineMetadata', { kind: 'machineMetadata' }],
  ['Conflicts', { kind: 'conflicts' }],
  ['Global', { kind: 'global' }],
  ['Replaces', { kind: 'replaces' }],
  ['X-ConditionMachineID', { kind: 'machineId', deprecatedFor: 'MachineID' }],
  ['X-ConditionMachineBootID', { kind: 'machineId', deprecatedFor: 'MachineID' }],
  ['X-ConditionMachineOf', { kind: 'machineOf', deprecatedFor: 'MachineOf' }],
  ['X-ConditionMachineMetadata', { kind: 'machineMetadata', deprecatedFor: 'MachineMetadata' }],
  ['X-Conflicts', { kind: 'conflicts', deprecatedFor: 'Conflicts' }],
]);

/** The option names of [X-Fleet], for help texts and suggestions. */
export const FLEET_OPTION_NAMES: readonly string[] = [...KEYS.keys()];

const MACHINE_ID = /^[A-Za-z0-9_.:-]+$/;
const METADATA_KEY = /^[A-Za-z0-9_.-]+$/;

/** The outcome of reading [X-Fleet]: the options, hard problems, and deprecation warnings. */
export interface FleetOptionsResult {
  readonly options: FleetOptions;
  readonly problems: readonly UnitProblem[];
  readonly warnings: readonly UnitProblem[];
}

/**
 * Splits an [X-Fleet] value into words: whitespace separates words, and double quotes group
 * words that contain spaces (`"region=us east" disk=ssd` is two words); the quotes are dropped.
 * Backslash escapes are not interpreted, as in fleet.
 *
 * fleet split only values that began and ended with a quote, and split Conflicts (only) at
 * whitespace; an unquoted `MachineMetadata=a=1 b=2` was silently ignored. We split every value
 * the same way, so that line means both pairs. An unbalanced quote is reported by the caller.
 */
export function splitWords(value: string): { words: string[]; unbalanced: boolean } {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  let quoted = false;
  for (const ch of value) {
    if (ch === '"') {
      quoted = !quoted;
      inWord = true;
      continue;
    }
    if (!quoted && (ch === ' ' || ch === '\t')) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
      continue;
    }
    current += ch;
    inWord = true;
  }
  if (inWord) words.push(current);
  return { words, unbalanced: quoted };
}

function closestKey(name: string): string | undefined {
  const lower = name.toLowerCase();
  return FLEET_OPTION_NAMES.find((k) => k.toLowerCase() === lower);
}

/**
 * The most values one list option may hold. Real units name a handful; the limits keep a hostile
 * file from costing the validator (peers x patterns glob matches) more than a few milliseconds.
 */
export const MAX_VALUES: Readonly<
  Record<'machineOf' | 'conflicts' | 'replaces' | 'machineMetadata', number>
> = {
  machineOf: 64,
  conflicts: 128,
  replaces: 128,
  machineMetadata: 128,
};

/** A list in first-seen order without duplicates, in linear time. */
class UniqueList {
  readonly items: string[] = [];
  private readonly seen = new Set<string>();

  /** Adds `value` unless present; false when the list is full (`limit`). */
  add(value: string, limit = Number.POSITIVE_INFINITY): boolean {
    if (this.seen.has(value)) return true;
    if (this.items.length >= limit) return false;
    this.seen.add(value);
    this.items.push(value);
    return true;
  }
}

const SPECIFIER = /%[nNpi]/;

/**
 * Reads and validates the [X-Fleet] options of a unit file. For a unit name that is not a
 * template, the specifiers `%n %N %p %i` are expanded in every value, as fleet does, and
 * validation runs on the expanded values. A template (`web@.service`) has no instance yet: its
 * specifiers stay as written, a word holding one is checked when an instance is created, and
 * the rest are checked as usual. All problems are returned together, never thrown.
 */
export function readFleetOptions(unit: UnitFile, file: string, unitName?: string): FleetOptionsResult {
  const expand = unitName !== undefined && !isTemplate(unitName);
  const deferred = (word: string): boolean => !expand && SPECIFIER.test(word);
  const problems: UnitProblem[] = [];
  const warnings: UnitProblem[] = [];
  const machineIds: { value: string; option: UnitOption }[] = [];
  const machineOf = new UniqueList();
  const metadata = new Map<string, UniqueList>();
  let metadataValues = 0;
  const conflicts = new UniqueList();
  const replaces = new UniqueList();
  const full = new Set<string>();
  const tooMany = (o: UnitOption, kind: keyof typeof MAX_VALUES): void => {
    if (full.has(kind)) return;
    full.add(kind);
    problem(o, `too many values (at most ${MAX_VALUES[kind]})`);
  };
  const addMetadata = (o: UnitOption, key: string, value: string): void => {
    let values = metadata.get(key);
    if (values === undefined) {
      values = new UniqueList();
      metadata.set(key, values);
    }
    const before = values.items.length;
    if (metadataValues >= MAX_VALUES.machineMetadata && !values.items.includes(value)) {
      tooMany(o, 'machineMetadata');
      return;
    }
    values.add(value);
    metadataValues += values.items.length - before;
  };
  let global = false;
  let globalLine: UnitOption | undefined;

  const problem = (o: UnitOption, message: string): void => {
    problems.push({
      file,
      ...(o.line > 0 ? { line: o.line } : {}),
      section: FLEET_SECTION,
      option: o.name,
      message,
    });
  };

  for (const o of unit.options) {
    if (o.section !== FLEET_SECTION) continue;
    const spec = KEYS.get(o.name);
    if (spec === undefined) {
      const near = closestKey(o.name);
      problem(
        o,
        near === undefined
          ? `unknown option (valid: ${FLEET_OPTION_NAMES.filter((k) => !k.startsWith('X-')).join(', ')})`
          : `unknown option; option names are case-sensitive: did you mean ${near}?`,
      );
      continue;
    }
    if (spec.deprecatedFor !== undefined) {
      warnings.push({
        file,
        ...(o.line > 0 ? { line: o.line } : {}),
        section: FLEET_SECTION,
        option: o.name,
        message: `is deprecated; use ${spec.deprecatedFor}`,
      });
    }
    const value = expand ? expandSpecifiers(o.value, unitName) : o.value;
    const { words, unbalanced } = splitWords(value);
    if (unbalanced) {
      problem(o, `unbalanced double quote in ${JSON.stringify(o.value)}`);
      continue;
    }

    switch (spec.kind) {
      case 'machineId': {
        if (words.length !== 1) {
          problem(o, `needs exactly one machine ID, got ${JSON.stringify(value)}`);
          break;
        }
        const id = words[0] ?? '';
        if (!MACHINE_ID.test(id) && !deferred(id)) {
          problem(o, `invalid machine ID ${JSON.stringify(id)}`);
          break;
        }
        machineIds.push({ value: id, option: o });
        break;
      }
      case 'machineOf': {
        if (words.length === 0) {
          problem(o, `needs a unit name, got ${JSON.stringify(value)}`);
          break;
        }
        for (const w of words) {
          const bad = deferred(w) ? undefined : validateUnitName(w);
          if (bad !== undefined) problem(o, `${JSON.stringify(w)} is not a unit name: ${bad}`);
          else if (unitName !== undefined && w === unitName)
            problem(o, 'a unit cannot be its own MachineOf peer');
          else if (!machineOf.add(w, MAX_VALUES.machineOf)) tooMany(o, 'machineOf');
        }
        break;
      }
      case 'machineMetadata': {
        if (words.length === 0) {
          problem(o, `needs key=value pairs, got ${JSON.stringify(value)}`);
          break;
        }
        for (const w of words) {
          const parts = w.split('=');
          const key = parts[0] ?? '';
          const val = parts[1] ?? '';
          if (deferred(w)) {
            addMetadata(o, key, parts.slice(1).join('='));
          } else if (parts.length !== 2 || key === '' || val === '') {
            problem(o, `expected key=value, got ${JSON.stringify(w)} (quote a value that contains spaces)`);
          } else if (!METADATA_KEY.test(key)) {
            problem(
              o,
              `invalid metadata key ${JSON.stringify(key)} (letters, digits, "_", "." and "-" only)`,
            );
          } else {
            addMetadata(o, key, val);
          }
        }
        break;
      }
      case 'conflicts':
      case 'replaces': {
        if (words.length === 0) {
          problem(o, `needs a unit name or glob, got ${JSON.stringify(value)}`);
          break;
        }
        for (const w of words) {
          if (!isValidGlob(w) && !deferred(w)) problem(o, `invalid glob pattern ${JSON.stringify(w)}`);
          else if (!(spec.kind === 'conflicts' ? conflicts : replaces).add(w, MAX_VALUES[spec.kind])) {
            tooMany(o, spec.kind);
          }
        }
        break;
      }
      case 'global': {
        if (words.length === 1 && deferred(words[0] ?? '')) {
          problem(o, 'Global cannot depend on the instance name');
          break;
        }
        const b = words.length === 1 ? parseSystemdBoolean(words[0] ?? '') : undefined;
        if (b === undefined) {
          problem(o, `expected a boolean (yes/no, true/false, on/off, 1/0), got ${JSON.stringify(value)}`);
          break;
        }
        // Repeated lines: the last one wins, as in fleet and systemd.
        global = b;
        globalLine = o;
        break;
      }
    }
  }

  const distinctIds = [...new Set(machineIds.map((m) => m.value))];
  if (distinctIds.length > 1) {
    const second = machineIds.find((m) => m.value !== distinctIds[0]);
    if (second !== undefined) {
      problem(second.option, `conflicts with an earlier machine ID (${distinctIds.join(', ')}): give one`);
    }
  }

  const options: FleetOptions = {
    ...(distinctIds[0] === undefined ? {} : { machineId: distinctIds[0] }),
    machineOf: machineOf.items,
    machineMetadata: [...metadata].map(([key, values]) => ({ key, values: values.items })),
    conflicts: conflicts.items,
    global,
    replaces: replaces.items,
  };
  const anchor = globalLine ?? unit.options.find((o) => o.section === FLEET_SECTION);
  problems.push(...validateFleetOptions(options, file, anchor?.line));
  return { options, problems, warnings };
}

const GLOB_META = /[*?[\\]/;

/** A glob match with a fast path for patterns that are plain names (most of them). */
function matches(pattern: string, name: string): boolean {
  return GLOB_META.test(pattern) ? globMatches(pattern, name) : pattern === name;
}

/**
 * The combination rules (fleet's `ValidateOptions`, docs/fleet-compat.md §2.4), all reported at once:
 * a MachineOf peer matched by a Conflicts or Replaces glob is unresolvable, and MachineID,
 * Global, MachineOf, Conflicts and Replaces exclude each other as fleet defined.
 */
export function validateFleetOptions(options: FleetOptions, file: string, line?: number): UnitProblem[] {
  const problems: UnitProblem[] = [];
  const at = (option: string, message: string): void => {
    problems.push({
      file,
      ...(line !== undefined && line > 0 ? { line } : {}),
      section: FLEET_SECTION,
      option,
      message,
    });
  };
  for (const peer of options.machineOf) {
    for (const c of options.conflicts) {
      if (matches(c, peer))
        at('MachineOf', `unresolvable requirements: peer "${peer}" matches conflict "${c}"`);
    }
    for (const r of options.replaces) {
      if (matches(r, peer))
        at('MachineOf', `unresolvable requirements: peer "${peer}" matches replace "${r}"`);
    }
  }
  const has = {
    machineId: options.machineId !== undefined,
    machineOf: options.machineOf.length > 0,
    conflicts: options.conflicts.length > 0,
    global: options.global,
    replaces: options.replaces.length > 0,
  };
  const exclusive: [keyof typeof has, keyof typeof has, string, string][] = [
    ['machineId', 'machineOf', 'MachineID', 'MachineOf'],
    ['machineId', 'conflicts', 'MachineID', 'Conflicts'],
    ['machineId', 'global', 'MachineID', 'Global'],
    ['machineId', 'replaces', 'MachineID', 'Replaces'],
    ['global', 'machineOf', 'Global', 'MachineOf'],
    ['global', 'replaces', 'Global', 'Replaces'],
    ['conflicts', 'replaces', 'Conflicts', 'Replaces'],
  ];
  for (const [a, b, nameA, nameB] of exclusive) {
    if (has[a] && has[b]) at(nameA, `${nameA} cannot be used with ${nameB}`);
  }
  return problems;
}

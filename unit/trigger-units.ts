import { activatedServiceOf, type SocketUnitOption } from './socket-activation.js';
import { expandSpecifiersFor } from './specifiers.js';
import { parseUnitName, validateUnitName } from './unit-name.js';

/**
 * Which unit a trigger unit starts, as systemd decides it. systemd has four kinds of trigger:
 * a socket starts its service on a connection, a timer its unit when it elapses, a path unit its
 * unit when a watched path changes, an automount its mount on first access; each refuses to start
 * while the unit it triggers is not loaded ("Refusing to start, unit ... to trigger not loaded").
 * The engine keeps a trigger and its unit on one machine, the agent loads the unit with its
 * trigger and starts the trigger only once the unit is there.
 */

/** The unit types that trigger another unit. */
export type TriggerType = 'socket' | 'timer' | 'path' | 'automount';

/** The section each trigger type reads `Unit=` from (sockets use `Service=`; automounts have none). */
const UNIT_SECTION: Readonly<Record<'timer' | 'path', string>> = { timer: 'Timer', path: 'Path' };

/** Specifiers `expandSpecifiersFor` knows (`%n %N %p %i`, and `%%`). */
const KNOWN_SPECIFIER = /%[nNpi%]/g;

/** The trigger type of a unit name, or undefined when the name is not a trigger unit. */
export function triggerTypeOf(name: string): TriggerType | undefined {
  const type = parseUnitName(name)?.type;
  return type === 'socket' || type === 'timer' || type === 'path' || type === 'automount' ? type : undefined;
}

/**
 * The unit the trigger unit `name` starts, from its options; undefined for names that are not
 * triggers, for templates (`foo@.timer`: only their instances are units) and when the answer
 * cannot be known here.
 *
 * - `.socket`: `activatedServiceOf` (`Service=`, else with `Accept=yes` the template, else the
 *   service of the same name).
 * - `.timer` and `.path`: `[Timer] Unit=` / `[Path] Unit=`; as in systemd
 *   (`config_parse_trigger_unit`) the first valid value wins and later ones are ignored; a value
 *   that is not a valid unit name, names a template, or has the trigger's own type is ignored.
 *   `%n %N %p %i` are expanded for the trigger's name; a value with another specifier (`%H`, ...)
 *   cannot be resolved here, and then the answer is undefined. Without a value: the service of the
 *   same name (`tick.timer` gives `tick.service`, `job@a.timer` gives `job@a.service`).
 * - `.automount`: the mount of the same name (`srv-data.automount` gives `srv-data.mount`).
 */
export function triggeredUnitOf(name: string, options: readonly SocketUnitOption[]): string | undefined {
  const info = parseUnitName(name);
  const type = triggerTypeOf(name);
  if (info === undefined || type === undefined) return undefined;
  if (info.template !== undefined && info.instance === '') return undefined;
  switch (type) {
    case 'socket':
      return activatedServiceOf(name, options);
    case 'automount':
      return `${info.name}.mount`;
    case 'timer':
    case 'path': {
      const section = UNIT_SECTION[type];
      for (const o of options) {
        if (o.section !== section || o.name !== 'Unit') continue;
        if (o.value.replace(KNOWN_SPECIFIER, '').includes('%')) return undefined;
        const target = expandSpecifiersFor(o.value, info);
        if (isTriggerable(target, type)) return target;
      }
      return `${info.name}.service`;
    }
  }
}

/** A valid unit name that is not a template and not of the trigger's own type. */
function isTriggerable(name: string, triggerType: string): boolean {
  if (validateUnitName(name) !== undefined) return false;
  const info = parseUnitName(name);
  if (info === undefined || info.type === triggerType) return false;
  return !(info.template !== undefined && info.instance === '');
}

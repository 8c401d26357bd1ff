import { parseSystemdBoolean } from './booleans.js';
import { expandSpecifiersFor } from './specifiers.js';
import { parseUnitName, validateUnitName } from './unit-name.js';

/**
 * Which service a socket unit activates, as systemd decides it (`socket.c`
 * `socket_load_service_unit`, `config_parse_socket_service`). fleet had no notion of this; the
 * engine uses it to keep a socket and its service on one machine, the agent to leave a service
 * that systemd activated running.
 */

/** The section systemd reads socket options from. */
export const SOCKET_SECTION = 'Socket';

/** One unit-file option, as the registry stores it. */
export interface SocketUnitOption {
  readonly section: string;
  readonly name: string;
  readonly value: string;
}

/** Specifiers `expandSpecifiersFor` knows (`%n %N %p %i`, and `%%`). */
const KNOWN_SPECIFIER = /%[nNpi%]/g;

/**
 * The service the socket unit `socketName` activates, from its options:
 *
 * - `[Socket] Service=` when set: the last value that is a service name wins. As in systemd, a
 *   value that is not a valid, non-template `.service` name is ignored (systemd logs and ignores
 *   it). The specifiers `%n %N %p %i` are expanded for the socket's name; a value with any other
 *   specifier (`%H`, ...) cannot be resolved here, and then the answer is undefined.
 * - otherwise with `Accept=` true (systemd's boolean words; an invalid value is ignored, as
 *   systemd ignores it): the template `<prefix>@.service` of the per-connection instances,
 *   `<prefix>` being the part of the name before any `@` (`web@a.socket` gives `web@.service`).
 * - otherwise the service of the same name: `foo.socket` gives `foo.service`, and the instance
 *   `foo@a.socket` gives `foo@a.service` (systemd's `unit_name_change_suffix`).
 *
 * Undefined for names that are not sockets, for socket templates (`foo@.socket`: only their
 * instances are units), and for `Accept=yes` together with `Service=`, which systemd refuses to
 * load ("Explicit service configuration for accepting socket units not supported").
 */
export function activatedServiceOf(
  socketName: string,
  options: readonly SocketUnitOption[],
): string | undefined {
  const info = parseUnitName(socketName);
  if (info?.type !== 'socket') return undefined;
  if (info.template !== undefined && info.instance === '') return undefined;

  let accept = false;
  let service: string | undefined;
  let unresolved = false;
  for (const o of options) {
    if (o.section !== SOCKET_SECTION) continue;
    if (o.name === 'Accept') {
      accept = parseSystemdBoolean(o.value) ?? accept;
    } else if (o.name === 'Service') {
      if (o.value.replace(KNOWN_SPECIFIER, '').includes('%')) {
        unresolved = true;
        service = undefined;
        continue;
      }
      const name = expandSpecifiersFor(o.value, info);
      if (isServiceName(name)) {
        service = name;
        unresolved = false;
      }
    }
  }
  if (unresolved) return undefined;
  if (service !== undefined) return accept ? undefined : service;
  return accept ? `${info.prefix}@.service` : `${info.name}.service`;
}

/** A valid unit name of type service that is not a template (what `Service=` accepts). */
function isServiceName(name: string): boolean {
  if (validateUnitName(name) !== undefined) return false;
  const info = parseUnitName(name);
  return info?.type === 'service' && !(info.template !== undefined && info.instance === '');
}

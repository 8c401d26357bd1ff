import { isIP } from 'node:net';

/**
 * Parsers for the value types of fleetd's options (config-options.ts). Each takes the raw text of
 * one setting, as it came from the file, the environment or a flag, and returns the value or why
 * the text is not one. Pure.
 */

/** One parsed value, or why the text is not a valid value. */
export type Parsed<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly why: string };

export const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
export const bad = <T>(why: string): Parsed<T> => ({ ok: false, why });

/** A TCP listen address. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const quote = (s: string): string => JSON.stringify(s);

/** Go's time.ParseDuration units, in milliseconds. */
const DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5 micro sign
  μs: 1e-3, // U+03BC Greek mu
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go duration (`time.ParseDuration`): a sequence of decimal numbers, each with a unit,
 * such as `10s`, `1m30s`, `1.5h`, `300ms`. As in Go, `0` alone is valid and a bare number is
 * not. Returns milliseconds.
 */
export function parseGoDuration(text: string): Parsed<number> {
  const example = 'write a duration with a unit, such as 10s, 1m30s or 500ms';
  let s = text.trim();
  if (s === '') return bad(`empty; ${example}`);
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s.startsWith('-')) sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return ok(0);
  if (/^\d+(\.\d*)?$|^\.\d+$/.test(s)) return bad(`${quote(text)} has no unit; ${example}`);
  const part = /^(\d+\.?\d*|\.\d+)([a-zµμ]+)/;
  let total = 0;
  let rest = s;
  while (rest !== '') {
    const m = part.exec(rest);
    if (m === null) return bad(`${quote(text)} is not a duration; ${example}`);
    const unit = DURATION_UNITS[m[2] ?? ''];
    if (unit === undefined) {
      return bad(`${quote(text)} has the unknown unit ${quote(m[2] ?? '')}; units are ns, us, ms, s, m, h`);
    }
    total += Number(m[1]) * unit;
    rest = rest.slice(m[0].length);
  }
  return ok(sign * total);
}

/** Renders milliseconds as a Go duration (`1m30s`, `2.5s`, `500ms`), for messages and diffs. */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  let rest = ms;
  let out = '';
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  if (h > 0) out += `${h}h`;
  if (h > 0 || m > 0) out += `${m}m`;
  return `${out}${Number((rest / 1000).toFixed(3))}s`;
}

/**
 * Parses a number of seconds such as `2`, `0.5` or `1.0` (fleet's float options) into
 * milliseconds, within [minSeconds, maxSeconds].
 */
export function parseSeconds(text: string, minSeconds: number, maxSeconds: number): Parsed<number> {
  const s = text.trim();
  if (!/^(\d+\.?\d*|\.\d+)$/.test(s)) {
    const unit = /^(\d+\.?\d*|\.\d+)[a-z]+$/i.test(s) ? ', without a unit' : '';
    return bad(`${quote(text)} is not a number of seconds; write one such as 2 or 0.5${unit}`);
  }
  const seconds = Number(s);
  if (seconds < minSeconds || seconds > maxSeconds) {
    return bad(`${s} is out of range: between ${minSeconds} and ${maxSeconds} seconds`);
  }
  return ok(Math.round(seconds * 1000));
}

/** Parses a decimal integer within [min, max]. */
export function parseInteger(text: string, min: number, max: number): Parsed<number> {
  const s = text.trim();
  if (!/^\d+$/.test(s)) return bad(`${quote(text)} is not a whole number`);
  const n = Number(s);
  if (n < min || n > max) return bad(`${s} is out of range: between ${min} and ${max}`);
  return ok(n);
}

const TRUE_WORDS = new Set(['1', 't', 'true', 'y', 'yes', 'on']);
const FALSE_WORDS = new Set(['0', 'f', 'false', 'n', 'no', 'off']);

/** Parses a boolean: Go's strconv.ParseBool words (`1 t true 0 f false`) and `yes/no/on/off`. */
export function parseBoolean(text: string): Parsed<boolean> {
  const s = text.trim().toLowerCase();
  if (TRUE_WORDS.has(s)) return ok(true);
  if (FALSE_WORDS.has(s)) return ok(false);
  return bad(`${quote(text)} is not a boolean; write true or false`);
}

/**
 * Parses fleet's list syntax (`pkg/flag.go StringSlice`): comma-separated items, each stripped
 * of leading ` ["` and trailing ` "]` characters, so `["http://a:2379", "http://b:2379"]` works
 * too. Empty items are dropped.
 */
export function parseList(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.replace(/^[ \t["]+/, '').replace(/[ \t\]"]+$/, ''))
    .filter((item) => item !== '');
}

/**
 * Parses etcd client URLs: at least one, each `http://` or `https://` with a host and a port and
 * no path, all with the same scheme (TLS applies to every connection or none).
 */
export function parseEtcdServers(text: string): Parsed<string[]> {
  const items = parseList(text);
  if (items.length === 0) return bad('needs at least one URL, such as http://127.0.0.1:2379');
  const urls: string[] = [];
  for (const item of items) {
    if (!item.includes('://')) return bad(`${quote(item)} has no scheme; write http://${item}`);
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      return bad(`${quote(item)} is not a URL; write one such as http://10.0.0.1:2379`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return bad(`${quote(item)}: the scheme must be http or https, not ${url.protocol.slice(0, -1)}`);
    }
    if (url.hostname === '') return bad(`${quote(item)} has no host`);
    if (url.port === '')
      return bad(`${quote(item)} has no port; write one such as ${url.protocol}//${url.host}:2379`);
    if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
      return bad(`${quote(item)}: an etcd URL has no path, query or fragment`);
    }
    if (url.username !== '' || url.password !== '') {
      return bad(`${quote(item)}: credentials in the URL are not supported`);
    }
    urls.push(`${url.protocol}//${url.host}`);
  }
  const schemes = new Set(urls.map((u) => u.slice(0, u.indexOf(':'))));
  if (schemes.size > 1) return bad('mixes http and https URLs; use one scheme for every server');
  return ok(urls);
}

/**
 * Parses `k=v,k2=v2` machine metadata. Whitespace around keys and values is trimmed and empty
 * items are skipped, as in fleet. Unlike fleet, which skipped an item without `=` and let a
 * repeated key win silently, both are errors here.
 */
export function parseMetadata(text: string): Parsed<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq < 0) return bad(`item ${quote(item)} is not key=value`);
    const key = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    if (key === '') return bad(`item ${quote(item)} has an empty key`);
    if (Object.hasOwn(out, key)) return bad(`key ${quote(key)} is given twice`);
    out[key] = value;
  }
  return ok(out);
}

/** Parses an absolute path; `allowEmpty` makes `""` mean "none". A trailing slash is kept. */
export function parsePath(text: string, allowEmpty: boolean): Parsed<string> {
  const s = text.trim();
  if (s === '') return allowEmpty ? ok('') : bad('needs a path');
  if (!s.startsWith('/')) return bad(`${quote(s)} is not an absolute path`);
  if (s.includes('\0')) return bad('contains a NUL character');
  return ok(s);
}

/** Parses the etcd key prefix: absolute, no whitespace, normalized to end in `/`. */
export function parseKeyPrefix(text: string): Parsed<string> {
  const s = text.trim();
  if (!s.startsWith('/')) return bad(`${quote(s)} must start with /`);
  if (/\s/.test(s)) return bad(`${quote(s)} contains whitespace`);
  return ok(s.endsWith('/') ? s : `${s}/`);
}

/** Parses an IP address, or `""` for "detect". */
export function parseIpAddress(text: string): Parsed<string> {
  const s = text.trim();
  if (s === '' || isIP(s) !== 0) return ok(s);
  return bad(`${quote(s)} is not an IPv4 or IPv6 address`);
}

/** Parses a file mode in octal (`0660`, `660`, `0o660`), at most 0777. */
export function parseFileMode(text: string): Parsed<number> {
  const s = text.trim();
  const m = /^(?:0o?)?([0-7]{1,3})$/i.exec(s);
  if (m === null) return bad(`${quote(text)} is not an octal file mode such as 0660`);
  return ok(parseInt(m[1] ?? '', 8));
}

/** Renders a file mode as four octal digits. */
export function formatFileMode(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

/** Parses `host:port` or `[ipv6]:port`; `""` means "off" (undefined). */
export function parseHostPort(text: string): Parsed<HostPort | undefined> {
  const s = text.trim();
  if (s === '') return ok(undefined);
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:[\]]*):(\d+)$/.exec(s);
  if (m === null) return bad(`${quote(s)} is not host:port (write [::1]:PORT for an IPv6 address)`);
  const host = m[1] ?? '';
  if (host === '')
    return bad(`${quote(s)} has no host; write 0.0.0.0:${m[2] ?? ''} to listen on every interface`);
  if (s.startsWith('[') && isIP(host) !== 6) return bad(`${quote(host)} is not an IPv6 address`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return bad(`port ${port} is out of range 1-65535`);
  return ok({ host, port });
}

/** Renders a listen address back to `host:port`. */
export function formatHostPort(address: HostPort | undefined): string {
  if (address === undefined) return '';
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** True for `localhost`, 127.0.0.0/8 and ::1. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

/**
 * Parses a D-Bus address such as `unix:path=/run/dbus/system_bus_socket` (a transport, a colon,
 * then key=value pairs); `""` means the system bus.
 */
export function parseBusAddress(text: string): Parsed<string> {
  const s = text.trim();
  if (s === '') return ok('');
  if (!/^[a-z][a-z0-9-]*:[^=,;]+=[^,;]*(,[^=,;]+=[^,;]*)*(;.+)?$/.test(s)) {
    return bad(`${quote(s)} is not a D-Bus address such as unix:path=/run/dbus/system_bus_socket`);
  }
  return ok(s);
}

import type { UnitRecord } from '../registry/model.js';

/**
 * The pure part of the unit drop folder (unit-drop-watcher.ts): which file names count, how a
 * dropped unit's origin is written and read, and the ownership rule as two plan functions that
 * decide, from a file and the unit stored under its name, what the watcher does and why.
 *
 * The ownership rule: a folder creates a unit only under a free name; it replaces or destroys a
 * unit only when the unit's origin is exactly that file on that machine. A unit from elsewhere
 * (the API, another machine's folder, another path) is never touched.
 */

const ORIGIN_PREFIX = 'drop:';

/** The origin of a unit dropped as `path` (absolute) into the folder of machine `machineId`. */
export function dropOrigin(machineId: string, path: string): string {
  return `${ORIGIN_PREFIX}${machineId}:${path}`;
}

/** The machine and path of a drop origin, or undefined for any other origin. */
export function parseDropOrigin(origin: string): { machine: string; path: string } | undefined {
  if (!origin.startsWith(ORIGIN_PREFIX)) return undefined;
  const rest = origin.slice(ORIGIN_PREFIX.length);
  // Machine IDs are hex; the path is absolute: the first colon separates them.
  const colon = rest.indexOf(':');
  if (colon <= 0) return undefined;
  return { machine: rest.slice(0, colon), path: rest.slice(colon + 1) };
}

/** Where a unit came from, for a log line a human reads. */
export function describeOrigin(origin: string | undefined): string {
  if (origin === undefined) return 'submitted through the API';
  const drop = parseDropOrigin(origin);
  if (drop === undefined) return `from ${origin}`;
  return `dropped as ${drop.path} on machine ${drop.machine}`;
}

// Leftovers of editors and package managers, never units: vim's swap files and its
// write test file "4913" (and the numbers after it), emacs's backups and autosaves, dpkg's and
// rpm's kept configuration files, and temporary files of tools that write then rename.
const LEFTOVER_SUFFIXES = ['~', '.swp', '.swo', '.swx', '.tmp', '.rpmnew', '.rpmsave', '.rpmorig'];
const DPKG_SUFFIX = /\.dpkg-[a-z]+$/;
const VIM_WRITE_TEST = /^\d+$/;

/**
 * True for names the folder ignores without a word: hidden files (`.web.service.swp`, emacs's
 * `.#web.service`), backups (`web.service~`), autosaves (`#web.service#`), temporary and
 * package-manager files (`web.service.tmp`, `web.service.dpkg-new`).
 */
export function isLeftoverFileName(name: string): boolean {
  if (name.startsWith('.')) return true;
  if (name.startsWith('#') && name.endsWith('#')) return true;
  if (VIM_WRITE_TEST.test(name)) return true;
  if (DPKG_SUFFIX.test(name)) return true;
  return LEFTOVER_SUFFIXES.some((suffix) => name.endsWith(suffix));
}

/** What the watcher does with a present, stable, valid file, and why. */
export type DropFileAction =
  | { readonly kind: 'create'; readonly reason: string }
  | { readonly kind: 'replace'; readonly reason: string }
  | { readonly kind: 'none'; readonly reason: string }
  /** The unit was ours and was replaced from elsewhere: the folder stops managing it. */
  | { readonly kind: 'release'; readonly reason: string }
  /** The name belongs to a unit from elsewhere: nothing is written, a human must act. */
  | { readonly kind: 'refuse'; readonly reason: string };

/** What the watcher does about a managed unit whose file is gone, and why. */
export type DropRemovalAction =
  | { readonly kind: 'destroy'; readonly reason: string }
  /** Nothing to do: the unit is gone, or no longer this file's. */
  | { readonly kind: 'forget'; readonly reason: string };

/** A present, stable, valid file and what the registry holds under its name. */
export interface DropFileInput {
  /** The file's origin (dropOrigin). */
  readonly origin: string;
  /** The hash of the file's unit. */
  readonly hash: string;
  /** The unit stored under the file's name, if any. */
  readonly existing: UnitRecord | undefined;
  /** True when the watcher knows the unit as its own (submitted it, or found it so at start). */
  readonly managed: boolean;
}

/** Decides what to do with a file (the ownership rule above). */
export function planDropFile(input: DropFileInput): DropFileAction {
  const { existing } = input;
  if (existing === undefined) return { kind: 'create', reason: 'no unit has the name' };
  if (existing.origin === input.origin) {
    return existing.hash === input.hash
      ? { kind: 'none', reason: 'the unit has the file contents' }
      : { kind: 'replace', reason: 'the file changed' };
  }
  const where = describeOrigin(existing.origin);
  if (input.managed) return { kind: 'release', reason: `the unit was replaced: it is now ${where}` };
  return { kind: 'refuse', reason: `a unit of that name exists, ${where}` };
}

/** Decides what to do about a managed unit whose file was removed. */
export function planDropRemoval(input: {
  readonly origin: string;
  readonly existing: UnitRecord | undefined;
}): DropRemovalAction {
  const { existing } = input;
  if (existing === undefined) return { kind: 'forget', reason: 'the unit is already gone' };
  if (existing.origin === input.origin) return { kind: 'destroy', reason: 'its file was removed' };
  return {
    kind: 'forget',
    reason: `the unit is no longer the file's: it is ${describeOrigin(existing.origin)}`,
  };
}

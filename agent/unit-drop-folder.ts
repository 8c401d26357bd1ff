import { createHash } from 'node:crypto';
import { constants, watch, type FSWatcher, type Stats } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import { describeError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { validateUnitName } from '../unit/unit-name.js';
import { isLeftoverFileName } from './unit-drop-plan.js';

/** Files larger than this are not read (the API refuses request bodies over 1 MiB too). */
export const MAX_DROP_FILE_BYTES = 1024 * 1024;

/** One read of a unit file: its contents and what tells two reads apart. */
export interface DropFileRead {
  /** Size, modification time and content digest. */
  readonly fingerprint: string;
  /** SHA-256 of the contents. */
  readonly digest: string;
  readonly contents: Buffer;
  /** False when the size stat gave differs from what was read: the file is being written. */
  readonly settled: boolean;
}

/**
 * The folder at one scan: its unit files by name (undefined for one that exists but cannot be
 * read, so that it does not count as removed), or that it is missing, or why it cannot be read.
 */
export type DropFolderScan =
  | { readonly kind: 'read'; readonly files: ReadonlyMap<string, DropFileRead | undefined> }
  | { readonly kind: 'missing' }
  | { readonly kind: 'unreadable'; readonly error: string };

export interface DropFolderDeps {
  /** The folder, an absolute path. */
  readonly directory: string;
  readonly logger: Logger;
  /** Called on every fs event in the folder (or, while it is missing, in its parent). */
  readonly onChange: () => void;
}

/**
 * Why a file or folder may not feed units to a daemon that runs as root, or undefined: like
 * sshd's StrictModes, it must be owned by root (or by fleetd's own user) and not be writable by
 * group or others, or another user could make fleetd submit what they wrote.
 */
export function unsafeOwnership(st: Pick<Stats, 'mode' | 'uid'>, ownUid: number): string | undefined {
  if (st.uid !== 0 && st.uid !== ownUid) return `owned by user ${st.uid}, not by root`;
  if ((st.mode & 0o022) !== 0)
    return `writable by ${(st.mode & 0o020) !== 0 ? 'its group' : 'others'} (mode ${(st.mode & 0o7777).toString(8)})`;
  return undefined;
}

const OWN_UID = process.getuid?.() ?? 0;

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** A folder that is not there (or a path through a file) is a missing folder, not an error. */
function isMissing(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * The file-system side of the unit drop folder: reads the candidate unit files (names that are
 * unit names and not editor leftovers, regular files up to 1 MiB) and keeps an fs.watch on the
 * folder, or on its parent while the folder is missing, re-made when the folder is replaced.
 * What it ignores or cannot read is logged once per file and situation.
 */
export class DropFolder {
  /** Per name: the situation logged last. */
  private readonly notes = new Map<string, string>();
  /** The folder's condition logged last. */
  private folderNote: string | undefined;
  private fsWatch: { readonly watcher: FSWatcher; readonly path: string; readonly ino: number } | undefined;
  private closed = false;

  constructor(private readonly deps: DropFolderDeps) {}

  /** Reads the folder and re-aims the fs.watch at what exists now. Never throws. */
  async scan(): Promise<DropFolderScan> {
    const { directory } = this.deps;
    let ino: number;
    let names: string[];
    try {
      const folder = await stat(directory);
      if (!folder.isDirectory()) return this.unreadable('not a folder');
      const unsafe = unsafeOwnership(folder, OWN_UID);
      if (unsafe !== undefined)
        return this.unreadable(`the folder is ${unsafe}; refusing it as sshd's StrictModes would`);
      ino = folder.ino;
      names = (await readdir(directory)).sort();
    } catch (err) {
      if (!isMissing(err)) return this.unreadable(describeError(err));
      await this.missing();
      return { kind: 'missing' };
    }
    this.follow({ path: directory, ino });
    if (this.folderNote !== 'read') {
      if (this.folderNote === 'missing') this.deps.logger.info('unit drop folder appeared');
      else if (this.folderNote !== undefined) this.deps.logger.info('unit drop folder readable again');
      this.folderNote = 'read';
    }
    const files = new Map<string, DropFileRead | undefined>();
    for (const name of names) {
      if (isLeftoverFileName(name)) continue;
      const badName = validateUnitName(name);
      if (badName !== undefined) {
        this.noteOnce(name, 'name', () => {
          this.deps.logger.info('file in the unit drop folder ignored: its name is not a unit name', {
            file: join(directory, name),
            why: badName,
          });
        });
        continue;
      }
      const read = await this.read(name);
      if (read !== 'gone') files.set(name, read);
    }
    const present = new Set(names);
    for (const name of [...this.notes.keys()]) if (!present.has(name)) this.notes.delete(name);
    return { kind: 'read', files };
  }

  /** Stops the fs.watch. Idempotent. */
  close(): void {
    this.closed = true;
    this.fsWatch?.watcher.close();
    this.fsWatch = undefined;
  }

  /**
   * One file's contents; 'gone' when it vanished or is not a regular file, undefined when it
   * cannot or may not be read. A symbolic link is refused without being followed (O_NOFOLLOW),
   * so nothing of a file elsewhere is ever read or logged; a file writable by group or others
   * or owned by another user is refused; at most 1 MiB is read, counted as it is read.
   */
  private async read(name: string): Promise<DropFileRead | 'gone' | undefined> {
    const file = join(this.deps.directory, name);
    const log = this.deps.logger;
    const refuse = (why: string): void => {
      this.noteOnce(name, `refused ${why}`, () => {
        log.error('file in the unit drop folder refused; its unit is left as it is', { file, why });
      });
    };
    let handle;
    try {
      handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      if (isMissing(err)) return 'gone';
      if (errorCode(err) === 'ELOOP') {
        refuse('a symbolic link (not followed)');
        return undefined;
      }
      const error = describeError(err);
      this.noteOnce(name, `unreadable ${error}`, () => {
        log.error('cannot read a file in the unit drop folder; its unit is left as it is', { file, error });
      });
      return undefined;
    }
    try {
      const before = await handle.stat();
      if (!before.isFile()) {
        this.noteOnce(name, 'not a file', () => {
          log.info('entry in the unit drop folder ignored: not a regular file', { file });
        });
        return 'gone';
      }
      const unsafe = unsafeOwnership(before, OWN_UID);
      if (unsafe !== undefined) {
        refuse(`${unsafe}; refusing it as sshd's StrictModes would`);
        return undefined;
      }
      // Read one byte past the cap: the bytes read decide, not the size stat reported.
      const buffer = Buffer.alloc(MAX_DROP_FILE_BYTES + 1);
      let length = 0;
      while (length < buffer.length) {
        const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      if (length > MAX_DROP_FILE_BYTES) {
        this.noteOnce(name, 'too large', () => {
          log.error('unit file too large to be a unit; its unit is left as it is', {
            file,
            bytes: Math.max(before.size, length),
            maxBytes: MAX_DROP_FILE_BYTES,
          });
        });
        return undefined;
      }
      const contents = Buffer.from(buffer.subarray(0, length));
      const digest = createHash('sha256').update(contents).digest('hex');
      return {
        fingerprint: `${before.size}/${before.mtimeMs}/${digest}`,
        digest,
        contents,
        settled: contents.length === before.size,
      };
    } catch (err) {
      if (isMissing(err)) return 'gone';
      const error = describeError(err);
      this.noteOnce(name, `unreadable ${error}`, () => {
        log.error('cannot read a file in the unit drop folder; its unit is left as it is', { file, error });
      });
      return undefined;
    } finally {
      await handle.close();
    }
  }

  private noteOnce(name: string, note: string, log: () => void): void {
    if (this.notes.get(name) === note) return;
    this.notes.set(name, note);
    log();
  }

  /** Logs a missing folder once and watches its parent for the folder to appear. */
  private async missing(): Promise<void> {
    if (this.folderNote !== 'missing') {
      this.folderNote = 'missing';
      this.deps.logger.info('unit drop folder does not exist; watching for it to appear');
    }
    const parent = dirname(this.deps.directory);
    try {
      const folder = await stat(parent);
      this.follow(folder.isDirectory() ? { path: parent, ino: folder.ino } : undefined);
    } catch {
      // No parent either: the periodic rescan notices the folder.
      this.follow(undefined);
    }
  }

  private unreadable(error: string): DropFolderScan {
    const note = `unreadable ${error}`;
    if (this.folderNote !== note) {
      this.folderNote = note;
      this.deps.logger.error('cannot read the unit drop folder; its units are left as they are', { error });
    }
    return { kind: 'unreadable', error };
  }

  /** Keeps one fs.watch on `target` (a folder identified by path and inode), or none. */
  private follow(target: { readonly path: string; readonly ino: number } | undefined): void {
    if (this.closed) return;
    const current = this.fsWatch;
    if (current !== undefined && current.path === target?.path && current.ino === target.ino) return;
    current?.watcher.close();
    this.fsWatch = undefined;
    if (target === undefined) return;
    try {
      const watcher = watch(target.path, { persistent: false }, () => {
        this.deps.onChange();
      });
      watcher.on('error', (err) => {
        // The folder went away under the watch: the next scan finds what to watch now.
        this.deps.logger.debug('unit drop folder watch ended', { error: describeError(err) });
        if (this.fsWatch?.watcher === watcher) this.fsWatch = undefined;
        watcher.close();
        this.deps.onChange();
      });
      this.fsWatch = { watcher, ...target };
    } catch (err) {
      this.deps.logger.warn('cannot watch the unit drop folder; relying on the periodic rescan', {
        path: target.path,
        error: describeError(err),
      });
    }
  }
}

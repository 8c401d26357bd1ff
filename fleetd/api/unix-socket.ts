import { chmod, chown, lstat, readFile, stat, unlink } from 'node:fs/promises';
import * as net from 'node:net';
import { FleetError, describeError } from '../../lib/errors.js';

/**
 * The API's unix socket file (fleet's `/var/run/fleet.sock`): created with the requested mode from
 * the start, a stale file left by a dead fleetd removed first, and removed again on close, but
 * only while it is still ours.
 */

/** A socket file this process created, identified by its inode. */
export interface UnixSocketFile {
  readonly path: string;
  readonly ino: number;
}

/** How long probing an existing socket may take before it counts as alive. */
const PROBE_TIMEOUT_MS = 2000;

function listenFailed(path: string, why: string, cause?: unknown): FleetError {
  return new FleetError('API_LISTEN_FAILED', `Cannot serve the API on unix socket ${path}: ${why}`, {
    cause,
  });
}

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** Connects to a socket file: does anybody answer there? */
function probe(path: string): Promise<'answering' | 'refused' | 'gone'> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path });
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
    };
    // A live server whose accept queue is full, or a stopped one, may leave us waiting: alive.
    const timer = setTimeout(() => {
      done();
      resolve('answering');
    }, PROBE_TIMEOUT_MS);
    socket.once('connect', () => {
      done();
      resolve('answering');
    });
    socket.once('error', (err) => {
      done();
      const code = errnoCode(err);
      if (code === 'ECONNREFUSED') resolve('refused');
      else if (code === 'ENOENT') resolve('gone');
      else if (code === 'EAGAIN') resolve('answering');
      else reject(listenFailed(path, `cannot tell whether ${path} is in use (${describeError(err)})`, err));
    });
  });
}

/**
 * Removes a socket file nobody answers on (left by a fleetd that died). Refuses, without touching
 * it, a path that is not a socket or that a live process serves.
 */
async function clearStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw listenFailed(path, describeError(err), err);
  }
  if (!isSocket) throw listenFailed(path, 'the path exists and is not a socket; it is left alone');
  const state = await probe(path);
  if (state === 'answering') throw listenFailed(path, 'another process is serving on it');
  if (state === 'refused') {
    await unlink(path).catch((err: unknown) => {
      if (errnoCode(err) !== 'ENOENT')
        throw listenFailed(path, `cannot remove the stale socket: ${describeError(err)}`, err);
    });
  }
}

/**
 * Binds `server` to `path` under a umask that yields `mode` (the bind is synchronous, so no other
 * code runs meanwhile), so the socket is never reachable with wider permissions, then sets `mode`
 * exactly. Where the umask cannot be changed (worker threads) the chmod alone applies it.
 */
function bind(server: net.Server, path: string, mode: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(listenFailed(path, describeError(err), err));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    let previous: number | undefined;
    try {
      previous = process.umask(0o777 & ~mode);
    } catch {
      // Worker threads may not change the umask; chmod below still sets the mode.
      previous = undefined;
    }
    try {
      server.listen(path);
    } finally {
      if (previous !== undefined) process.umask(previous);
    }
  });
}

/**
 * Serves `server` on the unix socket `path` with file mode `mode`, removing a stale socket file
 * first. Throws `API_LISTEN_FAILED` when the path is not a socket, is served by a live process, or
 * cannot be bound.
 */
export async function listenUnixSocket(
  server: net.Server,
  path: string,
  mode: number,
  group?: string,
): Promise<UnixSocketFile> {
  const gid = group === undefined || group === '' ? undefined : await groupId(group, path);
  await clearStaleSocket(path);
  // With a group, bind without group access first: the group is not yet the one asked for.
  await bind(server, path, gid === undefined ? mode : mode & 0o707);
  try {
    if (gid !== undefined) await chown(path, -1, gid);
    await chmod(path, mode);
    return { path, ino: (await stat(path)).ino };
  } catch (err) {
    server.close();
    throw listenFailed(
      path,
      `cannot set mode ${mode.toString(8)}${group === undefined ? '' : ` and group ${group}`}: ${describeError(err)}`,
      err,
    );
  }
}

/** The numeric ID of a group given by name (from /etc/group) or by number. */
export async function groupId(group: string, path: string, groupFile = '/etc/group'): Promise<number> {
  if (/^\d+$/.test(group)) return Number(group);
  let text: string;
  try {
    text = await readFile(groupFile, 'utf8');
  } catch (err) {
    throw listenFailed(path, `cannot look up group ${group} in ${groupFile}: ${describeError(err)}`, err);
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw listenFailed(path, `no group ${group} in ${groupFile}`);
}

/** Removes the socket file if it is still the one we created. Idempotent. */
export async function removeUnixSocketFile(file: UnixSocketFile): Promise<void> {
  try {
    const st = await lstat(file.path);
    if (st.isSocket() && st.ino === file.ino) await unlink(file.path);
  } catch (err) {
    // Node removes the file itself when the server closes; gone is the expected outcome.
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
}

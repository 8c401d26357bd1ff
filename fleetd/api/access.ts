import type * as http from 'node:http';
import { TLSSocket } from 'node:tls';

/**
 * Access control of the API, decided per listener (and per client certificate on TLS) in one
 * place, the server's request handler, so every route, today's and later ones, inherits it.
 */

/**
 * Who may change the cluster through a listener. `write`: every client (the default, as fleet).
 * `read`: only GET and HEAD are served, anything else is 403 (`api_readonly_socket`). `writers`
 * (TLS only): clients whose certificate's subject common name is listed may write, the others
 * only read (`api_tls_writers`).
 */
export type ApiAccess =
  | { readonly kind: 'write' }
  | { readonly kind: 'read' }
  | { readonly kind: 'writers'; readonly commonNames: readonly string[] };

/** Options of a unix socket listener. */
export interface ApiUnixListenOptions {
  /** File mode, default 0660. */
  readonly mode?: number;
  /** The group that owns the socket file: a group name or a numeric ID; default the process's. */
  readonly group?: string;
  /** Default `write`. */
  readonly access?: ApiAccess;
}

export const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

/** Full access. */
export const WRITE: ApiAccess = { kind: 'write' };

/** Whether a request on a listener with `access` may change anything. */
export function mayWrite(access: ApiAccess, req: http.IncomingMessage): boolean {
  switch (access.kind) {
    case 'write':
      return true;
    case 'read':
      return false;
    case 'writers': {
      const socket = req.socket;
      if (!(socket instanceof TLSSocket)) return false;
      const subject = socket.getPeerCertificate().subject as Record<string, string | string[]> | undefined;
      const cn = subject?.CN;
      const names = Array.isArray(cn) ? cn : cn === undefined ? [] : [cn];
      return names.length === 1 && access.commonNames.includes(names[0] ?? '');
    }
  }
}

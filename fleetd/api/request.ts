import type { IncomingMessage } from 'node:http';
import { ApiError } from './errors.js';

/** What a handler sees of a request: already routed, with its query and a bounded body reader. */
export interface ApiRequest {
  readonly method: string;
  /** The query string, parsed; handlers read the parameters they know and ignore the rest. */
  readonly query: URLSearchParams;
  /** Every value of each header as received (lower-case names), duplicates kept. */
  readonly headers: Readonly<Record<string, readonly string[] | undefined>>;
  /** Reads the whole body; 413 when it is larger than the server's limit. Call at most once. */
  body(): Promise<Buffer>;
  /** Aborts when the client goes away before the response is complete. */
  readonly signal: AbortSignal;
}

/**
 * fleet's `validateContentType`: exactly one `Content-Type` header whose media type (before any
 * `;`, trimmed) is `application/json`; otherwise 415 with fleet's messages. Media types are
 * case-insensitive (RFC 9110), so `Application/JSON` passes here where fleet refused it.
 */
export function requireJsonContentType(req: ApiRequest): void {
  const values = req.headers['content-type'] ?? [];
  if (values.length !== 1) throw new ApiError(415, `expected 1 Content-Type, got ${values.length}`);
  const mediaType = (values[0] ?? '').split(';', 1)[0]?.trim().toLowerCase();
  if (mediaType !== 'application/json') {
    throw new ApiError(415, 'only acceptable Content-Type is application/json');
  }
}

/** The 413 for a body over the limit; the connection is closed rather than drained. */
function tooLarge(maxBytes: number): ApiError {
  return new ApiError(413, `request body exceeds the limit of ${maxBytes} bytes`, { Connection: 'close' });
}

/**
 * Reads a request body of at most `maxBytes`. A declared `Content-Length` over the limit is refused
 * before reading anything; a body that grows past it is refused as soon as it does. Both are 413,
 * and the connection is closed so that the rest of the body is never read.
 */
export function readRequestBody(message: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(message.headers['content-length'] ?? '0');
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.reject(tooLarge(maxBytes));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      message.off('data', onData);
      message.off('end', onEnd);
      message.off('error', onError);
      message.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        message.pause();
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new ApiError(400, `unable to read body: ${err.message}`, { Connection: 'close' }));
    };
    const onAborted = (): void => {
      onError(new Error('the client closed the connection'));
    };
    message.on('data', onData);
    message.on('end', onEnd);
    message.on('error', onError);
    message.on('aborted', onAborted);
  });
}

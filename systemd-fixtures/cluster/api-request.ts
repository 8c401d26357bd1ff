import * as http from 'node:http';

/** What one request to fleetd's HTTP API returned. */
export interface ApiReply {
  readonly status: number;
  readonly body: string;
}

/**
 * One plain HTTP request to fleetd's API over its unix socket, without fleetctl: how the cluster
 * checks that an API answers. Rejects when the socket does not answer within `timeoutMs`.
 */
export function apiRequest(
  socketPath: string,
  method: string,
  path: string,
  timeoutMs = 5_000,
): Promise<ApiReply> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { socketPath, method, path, agent: false, timeout: timeoutMs },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, body });
        });
        response.on('error', reject);
      },
    );
    request.on('timeout', () => {
      request.destroy(new Error(`${method} ${path} on ${socketPath} timed out after ${timeoutMs} ms`));
    });
    request.on('error', reject);
    request.end();
  });
}

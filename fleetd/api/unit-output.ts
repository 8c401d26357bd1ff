import { isFleetError } from '../../lib/errors.js';
import type { OutputChunk, OutputRequest } from '../../registry/output-relay.js';
import { JOURNAL_OUTPUT_MODES, MAX_JOURNAL_LINES } from '../../registry/output-relay.js';
import type { ApiContext } from './context.js';
import { ApiError } from './errors.js';
import type { ApiRequest } from './request.js';
import type { ApiResponse } from './response.js';

/**
 * A unit's output on its machine, served by any fleetd (fleet-ts extension; fleet ran these over
 * ssh): `GET /fleet/v1/units/<name>/status` is `systemctl status` of the unit and
 * `GET /fleet/v1/units/<name>/journal` its journal, on the machine the `machineID` parameter names
 * (default: the machine the unit is scheduled on). This fleetd relays the request through etcd to
 * that machine's fleetd (registry/output-relay.ts), which runs the program there.
 *
 * Only submitted units can be read, on live machines. The answer streams as `application/x-ndjson`:
 * `{"text":"..."}` lines, then one `{"exit":N}` (the program's exit status) or `{"error":"..."}`.
 * A machine that does not answer is 504 before anything streams.
 *
 * Journal parameters: `lines` (0 to 100000, default 10), `follow` (`true` keeps streaming until the
 * client disconnects) and `output` (a journalctl text output mode, default `short`).
 */

export const NDJSON_CONTENT_TYPE = 'application/x-ndjson';

function journalRequest(unit: string, query: URLSearchParams): OutputRequest {
  const linesText = query.get('lines') ?? '10';
  const lines = /^\d+$/.test(linesText) ? Number(linesText) : NaN;
  if (!Number.isInteger(lines) || lines > MAX_JOURNAL_LINES)
    throw new ApiError(
      400,
      `lines must be a whole number from 0 to ${MAX_JOURNAL_LINES}, got ${JSON.stringify(linesText)}`,
    );
  const followText = query.get('follow') ?? 'false';
  if (followText !== 'true' && followText !== 'false')
    throw new ApiError(400, `follow must be true or false, got ${JSON.stringify(followText)}`);
  const output = query.get('output') ?? 'short';
  if (!JOURNAL_OUTPUT_MODES.includes(output))
    throw new ApiError(
      400,
      `output must be one of ${JOURNAL_OUTPUT_MODES.join(', ')}, got ${JSON.stringify(output)}`,
    );
  return { kind: 'journal', unit, lines, follow: followText === 'true', output };
}

function line(chunk: OutputChunk): string {
  switch (chunk.kind) {
    case 'data':
      return `${JSON.stringify({ text: chunk.text })}\n`;
    case 'exit':
      return `${JSON.stringify({ exit: chunk.code })}\n`;
    case 'error':
      return `${JSON.stringify({ error: chunk.message })}\n`;
  }
}

/** `GET /units/<name>/status` and `GET /units/<name>/journal`. */
export async function getUnitOutput(
  ctx: ApiContext,
  req: ApiRequest,
  name: string,
  kind: OutputRequest['kind'],
): Promise<ApiResponse> {
  const request: OutputRequest = kind === 'status' ? { kind, unit: name } : journalRequest(name, req.query);
  const stored = await ctx.registry.getUnit(name);
  if (stored === undefined) throw new ApiError(404, 'unit does not exist');
  let machine = req.query.get('machineID') ?? '';
  if (machine === '') {
    if (stored.unit.fleet.global)
      throw new ApiError(400, 'a global unit runs on several machines: name one with machineID');
    const placement = await ctx.registry.getPlacement(name);
    if (placement === undefined) throw new ApiError(404, 'unit is not scheduled to any machine');
    machine = placement.machine;
  }
  const machines = await ctx.registry.listMachines();
  if (!machines.some((m) => m.id === machine))
    throw new ApiError(404, `machine ${machine} is not in the cluster`);

  const stop = new AbortController();
  const onClose = (): void => {
    stop.abort();
  };
  req.signal.addEventListener('abort', onClose, { once: true });
  const chunks = ctx.registry.requestOutput(machine, request, stop.signal)[Symbol.asyncIterator]();
  let first: IteratorResult<OutputChunk>;
  try {
    first = await chunks.next();
  } catch (err) {
    req.signal.removeEventListener('abort', onClose);
    if (isFleetError(err, 'MACHINE_UNREACHABLE')) throw new ApiError(504, err.message);
    throw err;
  }
  async function* body(): AsyncGenerator<string> {
    try {
      if (first.done === true) return;
      yield line(first.value);
      for (;;) {
        let next: IteratorResult<OutputChunk>;
        try {
          next = await chunks.next();
        } catch (err) {
          if (stop.signal.aborted) return;
          yield line({ kind: 'error', message: err instanceof Error ? err.message : String(err) });
          return;
        }
        if (next.done === true) return;
        yield line(next.value);
      }
    } finally {
      req.signal.removeEventListener('abort', onClose);
      stop.abort();
      await chunks.return?.();
    }
  }
  return {
    status: 200,
    stream: body(),
    headers: { 'Content-Type': NDJSON_CONTENT_TYPE, 'Cache-Control': 'no-store' },
  };
}

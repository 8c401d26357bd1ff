import { isEventKind, type EventFilter, type StoredClusterEvent } from '../../unit/cluster-events.js';
import type { ApiContext } from './context.js';
import { ApiError } from './errors.js';
import { encodeEntity } from './json.js';
import { pageFromQuery, paginate } from './pagination.js';
import type { ApiRequest } from './request.js';
import { jsonResponse, type ApiResponse } from './response.js';

/**
 * The events resource (an extension of fleet's API): `GET /fleet/v1/events` lists the cluster's
 * event history oldest first, one page at a time like every list; `?watch=true` streams it as
 * newline-delimited JSON instead, first the events written after `revision` (or, without it,
 * every kept event that matches), then each new one as it is written, until the client goes.
 *
 * Filters (all optional, combined): `unit` (repeatable), `machine`, `kind` (repeatable), `since`
 * (RFC 3339 time), `revision` (only events written after that store revision). A list answers
 * `{"events": [...], "revision": N, "nextPageToken": ...}`; follow after `revision` to miss
 * nothing. The stream reads events by revision, not etcd's watch history, so it carries on
 * across an etcd compaction.
 */

/** The JSON of one event. */
export interface EventEntity {
  readonly id: string;
  readonly revision: number;
  /** RFC 3339 with milliseconds, UTC. */
  readonly time: string;
  readonly kind: string;
  readonly unit?: string;
  readonly machine?: string;
  readonly message: string;
  readonly reporter: string;
}

export function eventEntity(e: StoredClusterEvent): EventEntity {
  return {
    id: e.id,
    revision: e.revision,
    time: new Date(e.time).toISOString(),
    kind: e.kind,
    ...(e.unit === undefined ? {} : { unit: e.unit }),
    ...(e.machine === undefined ? {} : { machine: e.machine }),
    message: e.message,
    reporter: e.reporter,
  };
}

/** How often a stream re-reads even when no watch fired (a guard against a missed one). */
const FOLLOW_RESYNC_MS = 30_000;

function single(query: URLSearchParams, name: string): string | undefined {
  const values = query.getAll(name).filter((v) => v !== '');
  if (values.length > 1) throw new ApiError(400, `too many values for ${name}`);
  return values[0];
}

/** The filter a request asks for; 400 naming the parameter for a bad value. */
export function eventFilterFromQuery(query: URLSearchParams): EventFilter {
  const kinds = query.getAll('kind').filter((k) => k !== '');
  for (const k of kinds)
    if (!isEventKind(k)) throw new ApiError(400, `unknown event kind ${JSON.stringify(k)}`);
  const since = single(query, 'since');
  let sinceMs: number | undefined;
  if (since !== undefined) {
    sinceMs = Date.parse(since);
    if (!/^\d{4}-\d\d-\d\dT/.test(since) || Number.isNaN(sinceMs)) {
      throw new ApiError(400, `since must be an RFC 3339 time, got ${JSON.stringify(since)}`);
    }
  }
  const revision = single(query, 'revision');
  if (revision !== undefined && !/^\d{1,15}$/.test(revision)) {
    throw new ApiError(400, `revision must be a whole number, got ${JSON.stringify(revision)}`);
  }
  const machine = single(query, 'machine');
  const units = query.getAll('unit').filter((u) => u !== '');
  return {
    ...(units.length === 0 ? {} : { units }),
    ...(machine === undefined ? {} : { machine }),
    ...(kinds.length === 0 ? {} : { kinds: kinds.filter(isEventKind) }),
    ...(sinceMs === undefined ? {} : { since: sinceMs }),
    ...(revision === undefined ? {} : { afterRevision: Number(revision) }),
  };
}

/** `GET /events`: a page of events, or with `watch=true` the stream. */
export async function listEvents(ctx: ApiContext, req: ApiRequest): Promise<ApiResponse> {
  const watch = single(req.query, 'watch');
  if (watch !== undefined && watch !== 'true' && watch !== 'false') {
    throw new ApiError(400, `watch must be true or false, got ${JSON.stringify(watch)}`);
  }
  const filter = eventFilterFromQuery(req.query);
  if (watch === 'true') return followEvents(ctx, filter, req.signal);
  const token = pageFromQuery(req.query, ctx.tokenLimit);
  const read = await ctx.registry.listEvents(filter);
  const page = paginate(read.events, token);
  return jsonResponse(200, {
    events: page.items.map(eventEntity),
    revision: read.revision,
    nextPageToken: page.nextPageToken,
  });
}

/**
 * The stream: watch first (so nothing written meanwhile is missed), then read after the last
 * revision seen on every wake-up, until the client goes or the server closes (`signal`). A
 * failed read ends the stream; the client resumes from the last revision it got.
 */
function followEvents(ctx: ApiContext, filter: EventFilter, signal: AbortSignal): ApiResponse {
  async function* lines(): AsyncGenerator<string> {
    let wake: (() => void) | undefined;
    let woken = true;
    const poke = (): void => {
      woken = true;
      wake?.();
    };
    const sub = await ctx.registry.watchEvents(poke);
    signal.addEventListener('abort', poke);
    let after = filter.afterRevision;
    // A function, so that checks after an await are not narrowed away by the type checker.
    const aborted = (): boolean => signal.aborted;
    try {
      while (!aborted()) {
        if (!woken) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, FOLLOW_RESYNC_MS);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = undefined;
          if (aborted()) break;
        }
        woken = false;
        const read = await ctx.registry.listEvents({
          ...filter,
          ...(after === undefined ? {} : { afterRevision: after }),
        });
        const text = read.events.map((e) => `${encodeEntity(eventEntity(e))}\n`).join('');
        if (text !== '') yield text;
        after = Math.max(after ?? 0, read.revision);
      }
    } finally {
      signal.removeEventListener('abort', poke);
      await sub.close();
    }
  }
  return {
    status: 200,
    headers: { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-cache' },
    stream: lines(),
  };
}

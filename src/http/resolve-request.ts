/**
 * The resolver module asked per request on an http listener (issue 14: "Per request, not per
 * connection: route matching, the resolver module…"). The context is the pipeline's
 * (src/route/resolve-context.ts, from the connection's facts), with this request's host, path and
 * method in the facts, so they are in ctx and in the routing cache's key; `data` is this request's
 * head as received. The answer, in HTTP terms:
 * - null/undefined: the listener's route table decides (session.routeByTable);
 * - `{ endpoint }`: forwarded there over the listener's pool for that endpoint (SSRF-checked: it
 *   is not the operator's address; a refused one is 502 with the check's reason);
 * - `{ status, message? }`: answered with that status (400-599; anything else is 403), the body
 *   naming `resolver_refused` and the message; the access log's reason is `resolver_refused`;
 * - a throw: 502 `resolver_error`; no answer within resolveTimeoutMs: 504 `resolver_timeout`.
 * @module
 */
import { resolveWithTimeout, ResolveTimeout } from "../route/resolver.ts";
import { cacheKey, resolveContext } from "../route/resolve-context.ts";
import type { ListenerRuntime } from "../proxy/runtime.ts";
import { ALL_POOLS, UpstreamPool } from "./upstream-pool.ts";
import { HTTP_DEFAULTS } from "../config/http-schema.ts";

/** What the resolver's answer does to the request (the session's side of it). */
export interface ResolvingSession {
  readonly conn: import("../proxy/conn.ts").Conn;
  readonly head: import("./head.ts").RequestHead;
  /** performance.now() of the request's head; 0 once the exchange ended (a late answer is dropped). */
  readonly requestStart: number;
  routeByTable(): void;
  forwardResolved(endpoint: string): void;
  refuseResolved(status: number, reason: string, message: string): void;
}

/** src/proxy/runtime.ts RESOLVED (the metrics' route name for what the resolver placed). */
export const RESOLVED_ROUTE = "(resolver)";

/** Ask the listener's resolver about the request in `s.head`; the answer comes back through `s`. */
export function resolveRequest(s: ResolvingSession): void {
  const conn = s.conn, state = conn.listener.state, head = s.head;
  const ctx = resolveContext({
    listener: conn.listener.config.name, port: (conn.intake?.raw ?? conn.client).localPort, clientIp: conn.clientIp, clientPort: conn.clientPort,
    data: head.bytes.slice(head.start, head.end), // a copy: the bytes under it are the connection's buffer
  }, conn.facts!);
  const key = cacheKey(ctx);
  const cached = state.cache.get(key);
  if (cached !== undefined) return s.forwardResolved(cached);
  const asked = s.requestStart;
  resolveWithTimeout(state.resolver!, ctx, conn.listener.config.resolveTimeoutMs).then(
    function resolverAnswered(answer) {
      if (s.requestStart !== asked || conn.reason !== null) return; // the exchange ended while the resolver decided
      if (answer === null || answer === undefined) return s.routeByTable();
      if ("status" in answer) {
        const status = Number.isInteger(answer.status) && answer.status >= 400 && answer.status <= 599 ? answer.status : 403;
        return s.refuseResolved(status, "resolver_refused", typeof answer.message === "string" ? oneLine(answer.message) : "");
      }
      if (typeof answer.endpoint !== "string") return s.refuseResolved(502, "resolver_error", "answer has no endpoint string");
      if (answer.cache !== false) state.cache.set(key, answer.endpoint);
      s.forwardResolved(answer.endpoint);
    },
    function resolverFailed(e: unknown) {
      if (s.requestStart !== asked || conn.reason !== null) return;
      if (e instanceof ResolveTimeout) return s.refuseResolved(504, "resolver_timeout", "");
      s.refuseResolved(502, "resolver_error", "");
    },
  );
}

/** A message for a response body and a log line: printable, one line, bounded. */
function oneLine(message: string): string {
  return message.replace(/[^\x20-\x7e]/g, " ").slice(0, 200);
}

/** Pools of endpoints the resolver chose, per listener runtime and endpoint text (default pool settings). */
const RESOLVED_POOLS = new WeakMap<ListenerRuntime, Map<string, UpstreamPool>>();
/** Past this many endpoints, pools holding no connection are forgotten before a new one is made. */
const MAX_RESOLVED_POOLS = 1024;

export function resolvedPool(listener: ListenerRuntime, endpoint: string): UpstreamPool {
  let pools = RESOLVED_POOLS.get(listener);
  if (!pools) RESOLVED_POOLS.set(listener, (pools = new Map()));
  let pool = pools.get(endpoint);
  if (!pool) {
    // A resolver may name endpoints without end (one per tenant): empty pools are not kept for all of them.
    if (pools.size >= MAX_RESOLVED_POOLS) {
      for (const [key, p] of pools) {
        if (p.idle.length > 0 || p.active > 0) continue;
        pools.delete(key);
        ALL_POOLS.delete(p);
        p.stats?.pools.delete(p);
      }
    }
    const stats = listener.state.metrics.http.pool(listener.config.name, RESOLVED_ROUTE, endpoint);
    pools.set(endpoint, (pool = new UpstreamPool(endpoint, HTTP_DEFAULTS.maxIdle, HTTP_DEFAULTS.poolIdleTimeoutMs, stats)));
    ALL_POOLS.add(pool);
  }
  return pool;
}

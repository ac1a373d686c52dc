/**
 * Counting one HTTP exchange in the per-request metrics (src/control/http-metrics.ts): its status
 * class under its route (`-` when no route took it: no match, a refused head), and its upstream
 * latency (request sent to response head) when an upstream answered. The counters of a route are
 * looked up once per route runtime and kept, so a request costs a WeakMap get and two increments.
 * @module
 */
import type { RequestCounters } from "../control/http-metrics.ts";
import type { ListenerRuntime, RouteRuntime } from "../proxy/runtime.ts";

/** src/proxy/runtime.ts UNROUTED (not imported as a value: runtime.ts reaches this module through the registry). */
const UNROUTED = "-";
/** src/proxy/runtime.ts RESOLVED, likewise. */
const RESOLVED_ROUTE = "(resolver)";

const BY_ROUTE = new WeakMap<RouteRuntime, RequestCounters>();
const BY_LISTENER = new WeakMap<ListenerRuntime, RequestCounters>();
const RESOLVED_BY_LISTENER = new WeakMap<ListenerRuntime, RequestCounters>();

/** The request counters of `route`, of the resolver's placements (route `(resolver)`), or of `listener`'s requests that no route took. */
export function requestCounters(listener: ListenerRuntime, route: RouteRuntime | null, resolved = false): RequestCounters {
  if (resolved) {
    let c = RESOLVED_BY_LISTENER.get(listener);
    if (!c) RESOLVED_BY_LISTENER.set(listener, (c = listener.state.metrics.http.route(listener.config.name, RESOLVED_ROUTE)));
    return c;
  }
  if (route) {
    let c = BY_ROUTE.get(route);
    if (!c) BY_ROUTE.set(route, (c = listener.state.metrics.http.route(listener.config.name, route.config.name)));
    return c;
  }
  let c = BY_LISTENER.get(listener);
  if (!c) BY_LISTENER.set(listener, (c = listener.state.metrics.http.route(listener.config.name, UNROUTED)));
  return c;
}

/** One exchange ended with `status` (0: no response) after `upstreamMs` (null: no upstream answered). */
export function countExchange(listener: ListenerRuntime, route: RouteRuntime | null, resolved: boolean, status: number, upstreamMs: number | null): void {
  const c = requestCounters(listener, route, resolved);
  c.count(status);
  if (upstreamMs !== null) c.observeLatency(upstreamMs);
}

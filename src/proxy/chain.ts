/**
 * Listener chaining (SPEC.md: `"upstreams": [{ "listener": "web" }]` on a tls route with terminateTls):
 * the plaintext of a connection whose TLS the proxy ended continues into another listener in-process,
 * with no socket and no copy between them, as if that listener had accepted it. HTTPS is a tls
 * listener chained into an http one; SMTP's implicit TLS (port 465) a tls listener chained into an
 * smtp one; names no route terminates stay passthrough on the same port.
 *
 * Here is the bookkeeping of the move; the pipeline (src/proxy/pipeline.ts, stage `chain`) goes on
 * with the target's protocol module. The entry listener and its route count the connection as
 * closed with reason `chained`; the target counts it as a new connection of its own (its metrics,
 * route, access-log record), whose facts keep what TLS told (sni, alpn, ja3, ja4, client certificate)
 * and name the entry listener (`chainedFrom`). The entry's protection (gate) applies for the
 * connection's whole life; the target's is not applied a second time.
 * @module
 */
import type { Conn } from "./conn.ts";
import type { ListenerRuntime } from "./runtime.ts";

/** The reason the entry listener counts a chained connection closed with. */
export const CHAINED = "chained";

/** Move `conn` (TLS ended, routed on its entry listener) into `target`'s counters, unrouted. */
export function moveInto(conn: Conn, target: ListenerRuntime): void {
  const entry = conn.listener;
  entry.counters.active--;
  entry.counters.countClose(CHAINED);
  conn.routeCounters.active--;
  conn.routeCounters.countClose(CHAINED);
  conn.facts!.chainedFrom = entry.config.name;
  conn.listener = target;
  conn.route = null;
  conn.routeCounters = target.unrouted;
  target.counters.active++;
  target.counters.total++;
  target.unrouted.active++;
  target.unrouted.total++;
}

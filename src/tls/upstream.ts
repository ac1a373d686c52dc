/**
 * TLS toward the upstream (route `upstreamTls`), for connections whose client TLS the proxy ended:
 * the Bun connect options, made once per route and host, and the handshake handler that names a
 * failed handshake or verification.
 * @module
 */
import type { Socket } from "bun";
import type { Conn } from "../proxy/conn.ts";
import { upstreamTls } from "./options.ts";
import { log } from "../log/logger.ts";

/** Bun TLS options for the upstream of a terminated route with upstreamTls, else undefined. */
export function upstreamTlsFor(conn: Conn, host: string): object | undefined {
  if (conn.facts?.tls !== "terminate") return undefined;
  return routeUpstreamTls(conn, host);
}

/**
 * The route's upstreamTls as Bun TLS options, whatever the client's TLS: for protocols whose
 * upstream TLS starts inside their own handshake (MySQL's SSLRequest), where a client in plain
 * text gets it too. Undefined when the route has none.
 */
export function routeUpstreamTls(conn: Conn, host: string): object | undefined {
  const config = conn.route?.config.upstreamTls;
  if (!config) return undefined;
  // Made once per route and host: the CA file is read when first needed, not per connection.
  let byHost = upstreamSettings.get(config);
  if (!byHost) upstreamSettings.set(config, (byHost = new Map()));
  let settings = byHost.get(host);
  if (!settings) byHost.set(host, (settings = upstreamTls(config, host)));
  return settings;
}

const upstreamSettings = new WeakMap<object, Map<string, object>>();

/** The `handshake` handler of upstream TLS sockets. */
export function upstreamHandshake(s: Socket<Conn>, ok: boolean, authorizationError: Error | null): void {
  const conn = s.data;
  if (ok && !authorizationError) return;
  const verify = conn.route?.config.upstreamTls?.verify ?? true;
  if (ok && !verify) return; // verification off: the error is informational
  log.warn("upstream TLS handshake failed", { id: conn.id, upstream: conn.upstreamText, error: authorizationError?.message ?? "handshake failed" });
  conn.because("upstream_tls_failed");
}

/**
 * The last stage: whatever ended the connection, count it once, release its upstream slot, write the
 * access-log record and tell the resolver module. `abort` is how every failure path gets here.
 * @module
 */
import { log } from "../log/logger.ts";
import { OK_REASONS } from "../control/metrics.ts";
import { Conn, FINISHED, LOGGED_BY_MODULE, UPSTREAM_OPEN } from "./conn.ts";
import { resetOnClose } from "../native/sockets.ts";
import { socketFd } from "../net/socket-fd.ts";
import { release } from "../protect/gate.ts";
import { discardUnread, stopWaiting } from "./hello-peek.ts";
import { connLogId } from "./conn-id.ts";
import { logFields, NO_FACTS } from "../protocol/facts.ts";

/**
 * Close both sides now (FIN, not RST) and finish with `reason`; `detail` goes to the log. A client
 * that can be told why in its protocol, and that no upstream has spoken to yet, is told first
 * (ProtocolModule.farewell: a TLS alert, a PostgreSQL ErrorResponse).
 */
export function abort(conn: Conn, reason: string, detail?: string): void {
  if (conn.flags & FINISHED) return;
  conn.because(reason);
  if (detail !== undefined) log.warn(`connection closed: ${reason}`, { id: conn.id, listener: conn.listener.config.name, client: conn.clientIp, upstream: conn.upstreamText, detail });
  discardUnread(conn);
  finish(conn);
  conn.client.end(farewell(conn, reason) ?? undefined);
  conn.upstream?.end();
}

/**
 * Reset both sides (RST): when a peer reset, so the other peer learns of it the same way, and when
 * the proxy cuts a connection mid-stream (drain timeout, a second stop signal), so that neither peer
 * takes the end for a complete transfer. The fds are set to reset on close first (SO_LINGER 0):
 * a pair a kernel engine relays, and the socket under a TLS one, are closed by the process's exit or
 * by Bun later, not by terminate() here.
 */
export function reset(conn: Conn, reason: string): void {
  if (conn.flags & FINISHED) return;
  resetOnClose(socketFd(conn.intake?.raw ?? conn.client));
  if (conn.upstream) resetOnClose(socketFd(conn.upstream));
  conn.because(reason);
  finish(conn);
  conn.client.terminate();
  conn.upstream?.terminate();
}

export function finish(conn: Conn): void {
  if (conn.flags & FINISHED) return;
  conn.flags |= FINISHED;
  conn.pendingUp = conn.pendingDown = null;
  const state = conn.listener.state;
  state.live.remove(conn.id);
  if (conn.gateTicket) release(conn.gateTicket);
  if (conn.intake?.waitToken) stopWaiting(conn);
  const reason = conn.reason ?? "done";
  const lc = conn.listener.counters;
  const rc = conn.routeCounters;
  lc.active--;
  rc.active--;
  lc.bytesIn += conn.bytesIn;
  lc.bytesOut += conn.bytesOut;
  rc.bytesIn += conn.bytesIn;
  rc.bytesOut += conn.bytesOut;
  lc.countClose(reason);
  rc.countClose(reason);
  if (conn.upstreamIndex >= 0) conn.route?.balancer.release(conn.upstreamIndex);
  if (!OK_REASONS.has(reason) && log.enabled("debug")) log.debug(`connection ${conn.id} ended: ${reason}`);

  const durationMs = Math.round(performance.now() - conn.startedAt);
  const client = `${conn.clientIp}:${conn.clientPort}`;
  // A served connection whose module logs each message (HTTP: each request) gets no record of its own.
  if (!(conn.flags & LOGGED_BY_MODULE)) state.accessLog?.write({
    ts: new Date().toISOString(), id: connLogId(conn.id), listener: conn.listener.config.name, route: conn.route?.config.name ?? null,
    client, upstream: conn.upstreamText, upstreamAddr: conn.upstreamAddr, protocol: conn.listener.config.protocol, ...logFields(conn.facts ?? NO_FACTS),
    relay: conn.upstream ? conn.relay : null, bytesIn: conn.bytesIn, bytesOut: conn.bytesOut, durationMs, reason,
  });
  const hook = state.resolver?.onDisconnect;
  if (hook) {
    try {
      hook.call(state.resolver, {
        id: conn.id, listener: conn.listener.config.name, route: conn.route?.config.name ?? null,
        client: { ip: conn.clientIp, port: conn.clientPort }, upstream: conn.upstreamText,
        bytesIn: conn.bytesIn, bytesOut: conn.bytesOut, durationMs, reason,
      });
    } catch (e) {
      log.warn("resolver onDisconnect threw", { error: String(e) });
    }
  }
}

/** What to tell `conn`'s client before closing it for `reason`, or null. */
function farewell(conn: Conn, reason: string): Uint8Array | null {
  if (conn.intake === null || conn.flags & UPSTREAM_OPEN) return null;
  return conn.listener.module.farewell?.(conn, reason) ?? null;
}

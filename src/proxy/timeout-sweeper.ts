/**
 * Idle and connect timeouts without a timer per connection or per read: each read stamps
 * `lastActive` (and the dial stamps it when it starts), and one interval per process closes
 * connections silent in both directions for longer than their listener's idleTimeoutMs, and dials
 * older than connectTimeoutMs. Bun's own socket timeout was not used: it ticks in 4-second steps
 * (measured) and counts each socket alone, while idleness is a property of the pair.
 * Resolution: the sweep period, a quarter of the shortest timeout, between 50 ms and 1 s.
 * @module
 */
import type { ProxyState } from "./runtime.ts";
import type { Conn } from "./conn.ts";
import { abort } from "./finish.ts";
import { refuseConnection } from "./refusal.ts";
import { DIALING, HANDSHAKING, NOT_OURS, READING_PROXY_HEADER, UPSTREAM_OPEN } from "./conn.ts";

function handshakeTimeout(conn: Conn): void {
  refuseConnection(conn, conn.flags & READING_PROXY_HEADER ? "proxy_header_timeout" : "handshake_timeout");
}

/**
 * Sweep the connections of every state `states()` returns (after a reload, the old configuration's
 * connections live on beside the new one's). The period comes from the first state's timeouts.
 */
export function startTimeoutSweeper(first: ProxyState, states: () => Iterable<ProxyState>): () => void {
  const timeouts = first.listeners.flatMap((l) => [l.config.idleTimeoutMs, l.config.connectTimeoutMs, ...(l.readsFirst || l.proxyHeaderFrom ? [l.config.handshakeTimeoutMs] : [])]).filter((t) => t > 0);
  const period = Math.min(1000, Math.max(50, Math.floor(Math.min(...timeouts) / 4)));
  const timer = setInterval(() => { for (const state of states()) sweep(state); }, period);
  timer.unref();
  return () => clearInterval(timer);
}

function sweep(state: ProxyState): void {
  const now = performance.now();
  for (const conn of state.live) {
    if (conn.flags & NOT_OURS) continue;
    const config = conn.listener.config;
    const silent = now - conn.lastActive;
    // Sniffing and TLS: the whole handshake must fit in handshakeTimeoutMs, however the bytes trickle in.
    if (conn.flags & HANDSHAKING) {
      if (now - conn.startedAt > config.handshakeTimeoutMs) handshakeTimeout(conn);
      continue;
    }
    if ((conn.flags & (DIALING | UPSTREAM_OPEN)) === DIALING) {
      if (silent > config.connectTimeoutMs) abort(conn, "connect_timeout", `no answer from ${conn.upstreamText} within ${config.connectTimeoutMs} ms`);
    } else if (config.idleTimeoutMs > 0 && silent > config.idleTimeoutMs) {
      abort(conn, "idle_timeout");
    }
  }
}

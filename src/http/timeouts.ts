/**
 * The HTTP listeners' timeouts, swept as src/proxy/timeout-sweeper.ts sweeps connections: one
 * interval for the process, started with the first session, no timer per request. Each sweep looks
 * at every live session and pool:
 * - a head being read for longer than headerTimeoutMs (from its first byte): 408 and close
 *   (slowloris); the first head of a connection is read by the sniff stage, bounded by the
 *   listener's handshakeTimeoutMs;
 * - a connection idle between requests for longer than keepAliveTimeoutMs: closed without a word;
 * - an upstream dial older than connectTimeoutMs, or a response head later than the route's
 *   timeoutMs: 504;
 * - idle pooled connections older than their pool's idleTimeoutMs: closed.
 * Resolution: the period, 100 ms (timeouts here are seconds; a tenth of a second late is fine).
 * @module
 */
import type { HttpSession } from "./session.ts";
import { ALL_POOLS } from "./upstream-pool.ts";
import { abort } from "../proxy/finish.ts";
import { FINISHED } from "../proxy/conn.ts";

const PERIOD_MS = 100;
const live = new Set<HttpSession>();
let timer: ReturnType<typeof setInterval> | null = null;

export function watch(session: HttpSession): void {
  live.add(session);
  if (timer === null) {
    timer = setInterval(sweep, PERIOD_MS);
    timer.unref();
  }
}

export function unwatch(session: HttpSession): void {
  live.delete(session);
}

function sweep(): void {
  const now = performance.now();
  for (const s of live) {
    if (s.conn.flags & FINISHED) continue; // its close event is on the way
    // Phase.HEAD is 0 (a const enum of session.ts, compared as a number to keep this file free of its import cycle).
    if (s.phase === 0) {
      const config = s.config;
      if (s.inbuf.size > 0) {
        if (now - s.headSince > config.headerTimeoutMs) s.refuse(408, "header_timeout");
      } else if (config.keepAliveTimeoutMs > 0 && now - s.idleSince > config.keepAliveTimeoutMs) {
        unwatch(s);
        abort(s.conn, "keepalive_timeout");
      }
    } else {
      s.checkUpstreamTimeout(now);
    }
  }
  for (const pool of ALL_POOLS) pool.sweep(now);
}

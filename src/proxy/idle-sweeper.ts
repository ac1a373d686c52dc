/**
 * Idle timeouts without a timer per connection or per read: each read stamps `lastActive`, and one
 * interval per process closes connections silent in both directions for longer than their
 * listener's idleTimeoutMs. Bun's own socket timeout was not used: it ticks in 4-second steps
 * (measured) and counts each socket alone, while idleness is a property of the pair.
 * @module
 */
import type { ProxyState } from "./runtime.ts";
import { abort } from "./finish.ts";
import { NOT_OURS } from "./conn.ts";

/** Start sweeping; the period is a quarter of the shortest idle timeout, between 50 ms and 1 s. */
export function startIdleSweeper(state: ProxyState): () => void {
  const timeouts = state.listeners.map((l) => l.config.idleTimeoutMs).filter((t) => t > 0);
  if (timeouts.length === 0) return () => {};
  const period = Math.min(1000, Math.max(50, Math.floor(Math.min(...timeouts) / 4)));
  const timer = setInterval(sweep, period, state);
  timer.unref();
  return () => clearInterval(timer);
}

function sweep(state: ProxyState): void {
  const now = performance.now();
  for (const conn of state.live) {
    const limit = conn.listener.config.idleTimeoutMs;
    if (limit > 0 && !(conn.flags & NOT_OURS) && now - conn.lastActive > limit) {
      abort(conn, "idle_timeout");
    }
  }
}

/**
 * The splice relay: once routing is done and the upstream is connected, both sockets' fds go to the
 * native engine (src/native, native/src/splice.zig), whose own threads move the bytes with splice(2)
 * through a pipe per direction. The bytes never enter the JS heap.
 *
 * Handover (from the upstream socket's open handler): write the client bytes JS already holds
 * (conn.pendingUp) through the upstream socket, pause both Bun sockets, hand over the fds. From then
 * on the connection is marked HANDED_OVER, so the userspace relay's handlers and the idle sweeper
 * leave it alone; its counters stay "active" until the engine reports it done. The engine dups the fds, so Bun keeps owning its own.
 *
 * Completion: the engine queues {id, bytes each way, reason}; a timer drains the queue every
 * POLL_MS while pairs are live (no threadsafe JS callback from a foreign thread). Each record adds
 * the counts, finishes the connection and closes both Bun sockets: terminate() after a reset (the
 * engine set SO_LINGER 0, so the peer gets RST), end() otherwise.
 *
 * Engine choice, made once and logged once: `splice`, or `auto` with the library loaded and splice
 * working, uses this engine for every plaintext stream (all streams are plaintext today); else the
 * userspace relay, with the reason in the log.
 * @module
 */
import type { Socket } from "bun";
import type { Config } from "../config/types.ts";
import { Conn, HANDED_OVER } from "../proxy/conn.ts";
import { finish } from "../proxy/finish.ts";
import { log } from "../log/logger.ts";
import { errnoName, spliceAdd, splicePoll, spliceStart, type SpliceReason } from "../native/index.ts";

/** How often the completion queue is drained while pairs are live. */
const POLL_MS = 10;
/** Engine threads: the relay work is syscalls, one thread keeps up with a core of JS. */
const THREADS = 1;

let engine: "splice" | "userspace" | null = null;
const live = new Map<number, Conn>();
let timer: ReturnType<typeof setInterval> | null = null;

/** Decide once which engine this process uses and log it with the reason. */
export function relayEngine(config: Config): "splice" | "userspace" {
  if (engine) return engine;
  if (config.relay === "userspace") {
    engine = "userspace";
    log.info("relay engine: userspace", { configured: config.relay });
    return engine;
  }
  // auto and splice (sockmap is not built yet and refused by the configuration check).
  const why = spliceStart(THREADS);
  if (why === null) {
    engine = "splice";
    log.info("relay engine: splice", { configured: config.relay, threads: THREADS });
  } else {
    engine = "userspace";
    const fields = { configured: config.relay, reason: why };
    if (config.relay === "splice") log.warn("relay engine: userspace (splice unavailable)", fields);
    else log.info("relay engine: userspace (splice unavailable)", fields);
  }
  return engine;
}

/**
 * Called when the upstream has connected (after notifyConnect). Returns true when the engine took
 * the connection over; false leaves it to the userspace relay, with conn.pendingUp still to write.
 */
export function spliceHandover(conn: Conn): boolean {
  if (relayEngine(conn.listener.state.config) !== "splice") return false;
  const client = conn.client;
  const upstream = conn.upstream!;
  if (conn.pendingUp) {
    const bytes = conn.pendingUp;
    const n = upstream.write(bytes);
    if (n !== bytes.length) {
      // The upstream did not take a few KB at once: leave this connection to userspace.
      conn.pendingUp = n < 0 ? null : bytes.subarray(n);
      return false;
    }
    conn.pendingUp = null;
  }
  client.pause();
  upstream.pause();
  const rc = spliceAdd(fdOf(client), fdOf(upstream), conn.listener.config.idleTimeoutMs, conn.id);
  if (rc < 0) {
    log.warn("splice handover refused, relaying in userspace", { id: conn.id, error: errnoName(rc) });
    upstream.resume();
    return false;
  }
  conn.flags |= HANDED_OVER;
  conn.relay = "splice";
  live.set(conn.id, conn);
  timer ??= setInterval(drain, POLL_MS);
  return true;
}

/** Bun sockets carry their fd at run time; bun-types 1.4.5 does not declare it. */
function fdOf(socket: Socket<Conn>): number {
  const fd = (socket as unknown as { fd?: number }).fd;
  return typeof fd === "number" ? fd : -1;
}

function drain(): void {
  splicePoll(completed);
  if (live.size === 0 && timer) {
    clearInterval(timer);
    timer = null;
  }
}

const REASONS: Record<SpliceReason, string | null> = {
  done: null, a_reset: "client_reset", b_reset: "upstream_reset", idle_timeout: "idle_timeout",
  a_error: "client_error", b_error: "upstream_error", shutdown: "shutdown",
};

function completed(id: number, aToB: number, bToA: number, reason: SpliceReason, errno: number): void {
  const conn = live.get(id);
  if (!conn) return;
  live.delete(id);
  conn.bytesIn += aToB;
  conn.bytesOut += bToA;
  conn.lastActive = performance.now();
  const why = REASONS[reason];
  if (errno) log.warn(`${reason === "a_error" ? "client" : "upstream"} socket error`, { id, error: errnoName(-errno), relay: "splice" });
  if (why) conn.because(why);
  finish(conn); // first: closing a socket fires its close handler, which must find us finished
  if (reason === "a_reset" || reason === "b_reset") {
    conn.client.terminate();
    conn.upstream!.terminate();
  } else {
    conn.client.end();
    conn.upstream!.end();
  }
}

/** Connections the splice engine relays now (for tests and the admin API). */
export function splicedCount(): number {
  return live.size;
}

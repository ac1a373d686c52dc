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
import { CLIENT_EOF, CLIENT_SHUT, Conn, HANDED_OVER, SPLICE_LATER, UPSTREAM_EOF, UPSTREAM_SHUT, USERSPACE_ONLY } from "../proxy/conn.ts";

const HALF_CLOSED = CLIENT_EOF | UPSTREAM_EOF | CLIENT_SHUT | UPSTREAM_SHUT;
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
    const handover = config.relay === "auto" ? `after ${SPLICE_AUTO_AFTER_BYTES / 1024} KiB` : "at connect";
    log.info("relay engine: splice", { configured: config.relay, threads: THREADS, handover });
  } else {
    engine = "userspace";
    const fields = { configured: config.relay, reason: why };
    if (config.relay === "splice") log.warn("relay engine: userspace (splice unavailable)", fields);
    else log.info("relay engine: userspace (splice unavailable)", fields);
  }
  return engine;
}

/**
 * `auto` hands a connection over once it has moved this many bytes: short exchanges (request/
 * response, idle pools) stay in userspace, where a connection costs 2 fds and no handover, and bulk
 * streams go to the kernel, where they cost less CPU per byte. HAProxy's splice-auto makes the same
 * trade.
 */
export const SPLICE_AUTO_AFTER_BYTES = 256 * 1024;

/**
 * Called when the upstream has connected (after notifyConnect). With `relay: "splice"` the engine
 * takes the connection at once (true); with `auto` it is marked to be handed over when busy
 * (SPLICE_LATER) and stays in userspace for now (false, conn.pendingUp still to write).
 */
export function spliceHandover(conn: Conn): boolean {
  const configured = conn.listener.state.config.relay;
  if (conn.flags & USERSPACE_ONLY) return false; // TLS terminated here: the plaintext exists only in userspace
  if (relayEngine(conn.listener.state.config) !== "splice") return false;
  if (configured === "auto") {
    conn.flags |= SPLICE_LATER;
    return false;
  }
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
  return handOver(conn);
}

/**
 * From the userspace relay's data handlers, for SPLICE_LATER connections: hand over once busy and
 * nothing is pending in either direction (bytes JS holds must not overtake bytes in the kernel).
 */
export function spliceIfBusy(conn: Conn): void {
  if (conn.bytesIn + conn.bytesOut < SPLICE_AUTO_AFTER_BYTES || conn.pendingUp || conn.pendingDown) return;
  if (conn.flags & HALF_CLOSED) return; // a FIN already crossed in JS: finish the exchange here

  conn.flags &= ~SPLICE_LATER;
  if (!handOver(conn)) {
    conn.client.resume();
    conn.upstream!.resume();
  }
}

function handOver(conn: Conn): boolean {
  const client = conn.client;
  const upstream = conn.upstream!;
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

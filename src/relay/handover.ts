/**
 * Handing a routed, connected pair to a kernel relay engine (src/relay/engine.ts chose which):
 * sockmap (native/src/sockmap.zig: a BPF program redirects each segment to the peer socket),
 * uring (native/src/uring.zig: one io_uring, multishot receives and sends from a buffer ring) or
 * splice (native/src/splice.zig: native threads splice through pipes). Either way the bytes never
 * enter the JS heap, and every engine reports back the same way.
 *
 * Handover (from the upstream socket's open handler, or mid-stream for `auto`): the client bytes JS
 * already holds (conn.pendingUp) are written to the upstream FIRST, then both Bun sockets are paused
 * and their fds handed over. For sockmap this order is what keeps bytes in order: nothing of the
 * client's can be redirected ahead of bytes JS still holds; bytes that arrived in the kernel before
 * the handover are pushed through the program by the engine (SO_RCVLOWAT kick), so nothing waits
 * for a next segment. From then on the connection is HANDED_OVER, so the userspace relay's handlers
 * and the idle sweeper leave it alone; its counters stay "active" until the engine reports it done.
 * Connections marked USERSPACE_ONLY (TLS terminated by the proxy) are never handed over.
 *
 * Completion: each engine queues {id, bytes each way, reason}; a timer drains both queues every
 * POLL_MS while pairs are live (no threadsafe JS callback from a foreign thread). Each record adds
 * the counts, finishes the connection and closes both Bun sockets: terminate() after a reset (the
 * engine set SO_LINGER 0, so the peer gets RST), end() otherwise. One record is not an end:
 * `migrate`, from sockmap when a reader fell behind (native/src/sockmap.zig: the kernel's redirect
 * backlog has no bound, so the pair is handed back once every byte it redirected is delivered);
 * the userspace relay carries on, reading the sockets as usual. Splice cannot: the pair's sockets
 * stay in the BPF map until they close, and the program keeps TCP's queue empty.
 * @module
 */
import {
  CLIENT_EOF, CLIENT_SHUT, Conn, HANDED_OVER, KERNEL_LATER, NATIVE_ACCEPTED, RELAYED_BY_SOCKMAP, RELAYED_BY_SPLICE, RELAYED_BY_URING, UPSTREAM_EOF, UPSTREAM_SHUT,
  USERSPACE_ONLY,
  nothingPending,
} from "../proxy/conn.ts";
import { flushUp } from "./flush.ts";
import { finish } from "../proxy/finish.ts";
import { log } from "../log/logger.ts";
import { errnoName, spliceAdd, splicePoll } from "../native/index.ts";
import { socketFd } from "../net/socket-fd.ts";
import { sockmapAdd, sockmapPoll } from "../native/sockmap.ts";
import { uringAdd, uringPoll } from "../native/uring.ts";
import type { RelayReason } from "../native/records.ts";
import { KERNEL_AUTO_AFTER_BYTES, relayEngine, spliceRunning } from "./engine.ts";
import { ConnTable } from "../proxy/conn-table.ts";

const HALF_CLOSED = CLIENT_EOF | UPSTREAM_EOF | CLIENT_SHUT | UPSTREAM_SHUT;

/** How often the completion queues are drained while pairs are live. */
const POLL_MS = 10;

/** Handed-over connections by id, until their record (a Map would cost 136 B per entry: src/proxy/conn-table.ts). */
const live = new ConnTable<Conn>();
let timer: ReturnType<typeof setInterval> | null = null;

/**
 * Called when the upstream has connected (after notifyConnect). With `relay: "sockmap"`, `"uring"`
 * or `"splice"` the engine takes the connection at once (true); with `auto` it is marked to be handed
 * over when busy (KERNEL_LATER) and stays in userspace for now (false, conn.pendingUp still to write).
 */
export function kernelHandover(conn: Conn): boolean {
  const config = conn.listener.state.config;
  if (relayEngine(config) === "userspace" || conn.flags & USERSPACE_ONLY) return false;
  if (config.relay === "auto") {
    conn.flags |= KERNEL_LATER;
    return false;
  }
  // The upstream did not take the few KB JS holds at once, or the client has not taken what an
  // upstream handshake left for it: leave this connection to userspace.
  if (!nothingPending(conn.pendingDown) || !flushUp(conn)) return false;
  return handOver(conn);
}

/**
 * From the userspace relay's data handlers, for KERNEL_LATER connections: hand over once busy and
 * nothing is pending in either direction (bytes JS holds must not overtake bytes in the kernel).
 */
export function handOverIfBusy(conn: Conn): void {
  if (conn.bytesIn + conn.bytesOut < KERNEL_AUTO_AFTER_BYTES || !nothingPending(conn.pendingUp) || !nothingPending(conn.pendingDown)) return;
  if (conn.flags & HALF_CLOSED) return; // a FIN already crossed in JS: finish the exchange here
  conn.flags &= ~KERNEL_LATER;
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
  const idleMs = conn.listener.config.idleTimeoutMs;
  const a = socketFd(client);
  const b = socketFd(upstream);
  let rc = -1;
  const engine = relayEngine(conn.listener.state.config);
  if (engine === "uring") {
    rc = uringAdd(a, b, idleMs, conn.id);
    if (rc >= 0) return handedOver(conn, "uring");
    if (!spliceRunning()) return refused(conn, "uring", rc);
    log.warn("uring handover refused, trying splice", { id: conn.id, error: errnoName(rc) });
  }
  if (engine === "sockmap") {
    rc = sockmapAdd(a, b, idleMs, conn.id);
    if (rc >= 0) return handedOver(conn, "sockmap");
    // Not TCP on both sides, or a FIN already arrived: splice can take any pair that is still open.
    if (errnoName(rc) === "EOPNOTSUPP" || !spliceRunning()) return refused(conn, "sockmap", rc);
  }
  rc = spliceAdd(a, b, idleMs, conn.id);
  return rc >= 0 ? handedOver(conn, "splice") : refused(conn, "splice", rc);
}

/** The flag that records which engine took a pair (Conn.relay, the access log's `relay`). */
const RELAYED_BY = { sockmap: RELAYED_BY_SOCKMAP, uring: RELAYED_BY_URING, splice: RELAYED_BY_SPLICE } as const;

/**
 * A natively accepted connection (src/relay/uring-accept.ts) whose dial the uring engine was asked
 * for: its record arrives here like a handed-over pair's.
 */
export function adoptNative(conn: Conn): void {
  handedOver(conn, "uring");
}

/** The handed-over (or natively dialled) connection with this id, while its record has not come. */
export function handedOverConn(id: number): Conn | undefined {
  return live.get(id);
}

function handedOver(conn: Conn, engine: "sockmap" | "uring" | "splice"): true {
  conn.flags |= HANDED_OVER | RELAYED_BY[engine];
  live.add(conn);
  timer ??= setInterval(drain, POLL_MS);
  return true;
}

function refused(conn: Conn, engine: string, rc: number): false {
  // EOPNOTSUPP from sockmap: the client or upstream already sent FIN; userspace passes it on.
  if (errnoName(rc) !== "EOPNOTSUPP") log.warn(`${engine} handover refused, relaying in userspace`, { id: conn.id, error: errnoName(rc) });
  conn.upstream!.resume();
  return false;
}

function drain(): void {
  splicePoll(completedBySplice);
  sockmapPoll(completed);
  uringPoll(completed);
  if (live.size === 0 && timer) {
    clearInterval(timer);
    timer = null;
  }
}

const REASONS: Record<RelayReason, string | null> = {
  done: null, a_reset: "client_reset", b_reset: "upstream_reset", idle_timeout: "idle_timeout",
  a_error: "client_error", b_error: "upstream_error", shutdown: "shutdown", migrate: null,
  overflow: "relay_overflow", connect_failed: "upstream_error", connect_timeout: "connect_timeout",
};

/** A native dial's failure, named as the Bun path names it (src/relay/userspace.ts errorReason). */
const CONNECT_FAILURES: Record<string, string> = {
  ECONNREFUSED: "upstream_refused", EHOSTUNREACH: "upstream_unreachable", ENETUNREACH: "upstream_unreachable",
  ETIMEDOUT: "upstream_timeout", ENOENT: "upstream_no_socket", ECONNRESET: "upstream_reset",
};

/** A pair sockmap handed back mid-stream (`migrate`): the userspace relay carries on. */
function carryOn(conn: Conn): void {
  log.debug("sockmap handed a pair back (a reader fell behind); userspace relays the rest", { id: conn.id });
  live.remove(conn.id);
  conn.flags &= ~HANDED_OVER;
  conn.client.resume();
  conn.upstream!.resume();
}

/**
 * A splice record. The uring engine hands a natively accepted stream to splice (relay auto,
 * native/src/uring.zig "Streams"): the access log's relay names the engine that finished it, as for
 * a pair auto moved from userspace to splice.
 */
function completedBySplice(id: number, aToB: number, bToA: number, reason: RelayReason, errno: number): void {
  const conn = live.get(id);
  if (!conn) return;
  if (conn.flags & RELAYED_BY_URING) conn.flags = (conn.flags & ~RELAYED_BY_URING) | RELAYED_BY_SPLICE;
  settle(conn, aToB, bToA, reason, errno);
}

function completed(id: number, aToB: number, bToA: number, reason: RelayReason, errno: number): void {
  const conn = live.get(id);
  if (conn) settle(conn, aToB, bToA, reason, errno);
}

/** A pair's record: its counts, then the end of the connection (or, for `migrate`, userspace goes on). */
function settle(conn: Conn, aToB: number, bToA: number, reason: RelayReason, errno: number): void {
  const id = conn.id;
  conn.bytesIn += aToB;
  conn.bytesOut += bToA;
  conn.lastActive = performance.now();
  if (reason === "migrate") return carryOn(conn);
  live.remove(id);
  let why = REASONS[reason];
  if (reason === "connect_failed" || reason === "connect_timeout") {
    const error = errno ? errnoName(-errno) : "no answer";
    why = CONNECT_FAILURES[error] ?? why;
    log.warn(`connection closed: ${why}`, { id, listener: conn.listener.config.name, client: conn.clientIp, upstream: conn.upstreamText, detail: `${conn.upstreamText}: ${error}` });
  } else if (errno) {
    log.warn(`${reason === "a_error" ? "client" : "upstream"} socket error`, { id, error: errnoName(-errno), relay: conn.relay });
  }
  if (why) conn.because(why);
  finish(conn); // first: closing a socket fires its close handler, which must find us finished
  if (conn.flags & NATIVE_ACCEPTED) return; // the engine owned its only sockets, and closed them
  if (reason === "a_reset" || reason === "b_reset" || reason === "overflow") {
    conn.client.terminate();
    conn.upstream!.terminate();
  } else {
    conn.client.end();
    conn.upstream!.end();
  }
}

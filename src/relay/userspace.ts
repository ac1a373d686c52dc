/**
 * The userspace relay: Bun sockets on both sides, bytes moved by the event loop.
 *
 * Order and backpressure: a chunk is written at once only when nothing waits for its destination;
 * otherwise it queues behind what waits (conn.pendingUp / pendingDown, a bounded ByteQueue), and the
 * source is paused until the destination drains the queue, in order. Bun 1.4.5's TLS sockets deliver
 * data after pause() (seen under pgbench -i): such a chunk must not overtake the bytes still waiting,
 * or be written over them. The issue's replica also suggested delivery from inside the other socket's
 * write(); never seen here, but a write in progress (WRITING_UP / WRITING_DOWN) counts as bytes
 * waiting, so such a chunk would queue too, and a FIN then waits for the write.
 * Half-close: a FIN from one peer becomes a shutdown of the other's write side once its pending
 * bytes are written; the connection ends when both directions have ended. A reset from one peer is
 * passed on as a reset (terminate) to the other.
 *
 * The handler objects are shared by every connection; per-connection state lives in socket.data.
 * @module
 */
import type { Socket, SocketHandler } from "bun";
import {
  Conn, CLIENT_EOF, CLIENT_SHUT, NOT_OURS, RESPONDING, KERNEL_LATER, UPSTREAM_EOF, UPSTREAM_OPEN, UPSTREAM_SHUT,
  WRITING_DOWN, WRITING_UP, nothingPending,
} from "../proxy/conn.ts";
import type { ByteQueue } from "../net/byte-queue.ts";
import { abort, finish, reset } from "../proxy/finish.ts";
import { respondData } from "../respond/static.ts";
import { log } from "../log/logger.ts";
import { kernelHandover, handOverIfBusy } from "./handover.ts";
import { flush, flushUp } from "./flush.ts";

/** Handlers of accepted (client) sockets; the listener adds its own `open`. */
export const CLIENT_HANDLERS: Omit<SocketHandler<Conn>, "open"> = {
  // Plain Uint8Array chunks: a Buffer costs more to make and nothing here needs its methods.
  binaryType: "uint8array",
  data(client, chunk) {
    const conn = client.data;
    if (conn.flags & NOT_OURS) return;
    conn.lastActive = performance.now();
    conn.bytesIn += chunk.length;
    if (conn.flags & RESPONDING) return respondData(conn, chunk);
    if (!(conn.flags & UPSTREAM_OPEN)) return stash(conn, chunk);
    if (forwardUp(conn, chunk) && conn.flags & KERNEL_LATER) handOverIfBusy(conn);
  },
  drain(client) {
    const conn = client.data;
    if (conn.flags & NOT_OURS || nothingPending(conn.pendingDown) || conn.flags & WRITING_DOWN) return;
    if (!flushDown(conn)) return;
    if (conn.flags & UPSTREAM_EOF) shutClient(conn);
    else conn.upstream!.resume();
  },
  end(client) {
    const conn = client.data;
    if (conn.flags & NOT_OURS) return;
    conn.flags |= CLIENT_EOF;
    // Before the upstream is open the FIN waits: the open handler sends it after the stashed bytes.
    if (conn.flags & UPSTREAM_OPEN && nothingPending(conn.pendingUp) && !(conn.flags & WRITING_UP)) shutUpstream(conn);
    else if (conn.flags & RESPONDING) respondData(conn, null);
  },
  close(client, error) {
    closed(client.data, "client", error);
  },
  error(client, error) {
    noteError(client.data, "client", error);
  },
};

/**
 * The relay starts: the upstream is connected (conn.upstream) and any protocol handshake with it is
 * done. Called by the pipeline (src/proxy/pipeline.ts).
 */
export function startRelay(conn: Conn): void {
  conn.flags |= UPSTREAM_OPEN;
  notifyConnect(conn);
  // Upstream bytes an upstream handshake left for the client go first; a slow client pauses the upstream.
  if (!nothingPending(conn.pendingDown) && !flushDown(conn)) conn.upstream!.pause();
  if (kernelHandover(conn)) return; // the native engine relays from here on
  if (!flushUp(conn)) return; // drain resumes the client
  if (conn.flags & CLIENT_EOF) shutUpstream(conn);
  else conn.client.resume();
}

/** Handlers of upstream sockets; the pipeline adds `open`. */
export const UPSTREAM_HANDLERS: Omit<SocketHandler<Conn>, "open"> = {
  binaryType: "uint8array",
  connectError(upstream, error) {
    const conn = upstream.data;
    abort(conn, errorReason("upstream_connect", error), `${conn.upstreamText}: ${error.message}`);
  },
  data(upstream, chunk) {
    const conn = upstream.data;
    if (conn.flags & NOT_OURS) return;
    conn.lastActive = performance.now();
    conn.bytesOut += chunk.length;
    if (forwardDown(conn, chunk) && conn.flags & KERNEL_LATER) handOverIfBusy(conn);
  },
  drain(upstream) {
    const conn = upstream.data;
    if (conn.flags & NOT_OURS || nothingPending(conn.pendingUp) || conn.flags & WRITING_UP) return;
    if (!flushUp(conn)) return;
    if (conn.flags & CLIENT_EOF) shutUpstream(conn);
    else conn.client.resume();
  },
  end(upstream) {
    const conn = upstream.data;
    if (conn.flags & NOT_OURS) return;
    conn.flags |= UPSTREAM_EOF;
    if (nothingPending(conn.pendingDown) && !(conn.flags & WRITING_DOWN)) shutClient(conn);
  },
  close(upstream, error) {
    if (upstream.data.upstream === upstream) closed(upstream.data, "upstream", error);
  },
  error(upstream, error) {
    noteError(upstream.data, "upstream", error);
  },
};

/** Client bytes toward the upstream; true when they went out at once and nothing waits. */
const forwardUp = (conn: Conn, chunk: Uint8Array): boolean => forward(conn, chunk, true);

/** Upstream bytes toward the client; true when they went out at once and nothing waits. */
const forwardDown = (conn: Conn, chunk: Uint8Array): boolean => forward(conn, chunk, false);

const flushDown = (conn: Conn): boolean => flush(conn, conn.client, WRITING_DOWN, conn.pendingDown);

/**
 * Write `chunk` toward the upstream (`up`) or the client, or queue it behind the bytes waiting for
 * that side and pause its source (the destination's drain resumes it). True when nothing waits.
 */
function forward(conn: Conn, chunk: Uint8Array, up: boolean): boolean {
  const source = up ? conn.client : conn.upstream!;
  const dest = up ? conn.upstream! : conn.client;
  const writing = up ? WRITING_UP : WRITING_DOWN;
  if (conn.flags & writing || !nothingPending(up ? conn.pendingUp : conn.pendingDown)) {
    return wait(conn, source, up ? conn.upQueue() : conn.downQueue(), chunk);
  }
  conn.flags |= writing;
  const n = dest.write(chunk);
  conn.flags &= ~writing;
  if (n < 0) return true; // closed: its close handler ends the connection
  if (n < chunk.length) {
    // The tail goes before anything that arrived re-entrantly during the write.
    (up ? conn.upQueue() : conn.downQueue()).unshift(chunk.subarray(n));
    source.pause();
    return false;
  }
  const queue = up ? conn.pendingUp : conn.pendingDown;
  if (!nothingPending(queue)) {
    // Chunks arrived (and paused the source) while this one was being written: send them now.
    if (!flush(conn, dest, writing, queue)) return false;
    source.resume();
  }
  // A FIN that arrived during the write was left to it (the end handlers defer while writing).
  if (conn.flags & (up ? CLIENT_EOF : UPSTREAM_EOF)) {
    if (up) shutUpstream(conn);
    else shutClient(conn);
  }
  return true;
}

/** Queue `chunk` and pause its source; false (nothing waits is not true). */
function wait(conn: Conn, source: Socket<Conn>, queue: ByteQueue, chunk: Uint8Array): false {
  source.pause();
  if (!queue.push(chunk)) {
    log.warn("relay queue over its bound, connection reset", { id: conn.id, queued: queue.size, limit: queue.limit });
    reset(conn, queue.limitReason);
  }
  return false;
}

/** Client bytes that arrived before the upstream connected (the client is paused, so this is bounded). */
function stash(conn: Conn, chunk: Uint8Array): void {
  conn.client.pause();
  const queue = conn.upQueue();
  if (!queue.push(chunk)) abort(conn, queue.limitReason, "client sent more than the bound before the upstream connected");
}

function shutUpstream(conn: Conn): void {
  if (conn.flags & UPSTREAM_SHUT) return;
  conn.flags |= UPSTREAM_SHUT;
  conn.upstream!.shutdown();
  if (conn.flags & CLIENT_SHUT) bothDone(conn);
}

function shutClient(conn: Conn): void {
  if (conn.flags & CLIENT_SHUT) return;
  conn.flags |= CLIENT_SHUT;
  conn.client.shutdown();
  if (conn.flags & UPSTREAM_SHUT) bothDone(conn);
}

/** Both directions carried their FIN across: close both sockets and finish. */
function bothDone(conn: Conn): void {
  finish(conn);
  conn.client.end();
  conn.upstream?.end();
}

/** One socket closed for good: settle the other side according to how this one went. */
function closed(conn: Conn, side: "client" | "upstream", error: Error | undefined): void {
  if (conn.flags & NOT_OURS) return;
  if (error) {
    conn.because(sideErrorReason(conn, side, error));
    if (conn.reason?.endsWith("_reset")) return reset(conn, conn.reason);
  }
  const toClient = side === "upstream";
  const other = toClient ? conn.client : conn.upstream;
  const pending = (toClient ? conn.pendingDown : conn.pendingUp)?.drain() ?? null;
  // Bun reports a FIN on a socket whose write side we already shut as a close, not an end: then the
  // exchange is complete. Any other clean close came before the peer was done with us.
  const weShut = conn.flags & (toClient ? UPSTREAM_SHUT : CLIENT_SHUT);
  if (!error && !weShut) conn.because(`${side}_closed`);
  finish(conn); // first: ending `other` fires its close handler at once, which must find us finished
  if (other) {
    if (pending) other.end(pending);
    else other.end();
  }
}

function noteError(conn: Conn, side: "client" | "upstream", error: Error): void {
  const reason = sideErrorReason(conn, side, error);
  // Resets and refusals are a peer's doing and counted; anything else is worth a log line.
  if (reason.endsWith("_error")) log.warn(`${side} socket error`, { id: conn.id, error: error.message });
  conn.because(reason);
}

/**
 * Why a peer's socket failed. A reset after the peer's FIN is its kernel refusing bytes sent after
 * it closed (say a server still writing when the client hung up): the peer left normally.
 */
function sideErrorReason(conn: Conn, side: "client" | "upstream", error: Error): string {
  const reason = errorReason(side, error);
  const finished = conn.flags & (side === "client" ? CLIENT_EOF : UPSTREAM_EOF);
  return finished && reason === `${side}_reset` ? `${side}_closed` : reason;
}

function errorReason(side: string, error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ECONNRESET" || code === "EPIPE") return `${side}_reset`;
  if (code === "ECONNREFUSED") return "upstream_refused";
  if (code === "ETIMEDOUT") return `${side}_timeout`;
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return "upstream_unreachable";
  if (code === "ENOENT") return "upstream_no_socket";
  return `${side}_error`;
}

/** The resolver module's onConnect, once the upstream is open (also for natively dialled connections). */
export function notifyConnect(conn: Conn): void {
  const state = conn.listener.state;
  const hook = state.resolver?.onConnect;
  if (!hook) return;
  try {
    hook.call(state.resolver, {
      id: conn.id, listener: conn.listener.config.name, route: conn.route?.config.name ?? null,
      client: { ip: conn.clientIp, port: conn.clientPort }, upstream: conn.upstreamText,
    });
  } catch {
    // A hook is told, not asked: its failure must not cost the client its connection.
  }
}

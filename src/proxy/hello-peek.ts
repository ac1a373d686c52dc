/**
 * The sniff stage's peek path (tls listeners, native library loaded): the ClientHello is read with
 * MSG_PEEK (src/native/peek.ts) and stays in the kernel, so a passthrough relays the connection from
 * its first byte with nothing replayed (the userspace relay just resumes the socket; a kernel engine
 * takes the fds with the hello still queued) and a terminating route lets upgradeTLS read the hello
 * from the socket itself.
 *
 * - The socket is paused at accept, before Bun reads anything: Bun calls `open` before its first read
 *   (verified on Bun 1.4.5: with TCP_DEFER_ACCEPT the whole hello is queued at `open`, a peek there
 *   sees all of it, and resume() later delivers the same bytes).
 * - "Need more" waits for new bytes without a timer (src/proxy/hello-wait.ts says how and why).
 * - Bounds are the read path's: MAX_SNIFF_BYTES (one peek of at most that much) and
 *   handshakeTimeoutMs (the sweeper).
 * - A refusal discards the queued bytes before closing (discardUnread, from abort), so it looks to
 *   the client as a refusal after reading does.
 * - If the epoll set refuses a socket (out of watches), that connection falls back to reading.
 * @module
 */
import { Conn, SNIFFING } from "./conn.ts";
import { abort } from "./finish.ts";
import { MAX_SNIFF_BYTES, FirstBytes } from "../sniff/collect.ts";
import { peek } from "../native/peek.ts";
import { socketFd } from "../net/socket-fd.ts";
import { NOTICE } from "../native/peek-wait.ts";
import { helloPhase } from "../tls/stage.ts";
import { stopWaiting, waitForMore, whenMoreArrives } from "./hello-wait.ts";

whenMoreArrives(look);

/** Start sniffing `conn` (a tls listener's accepted socket) by peeking. */
export function peekHello(conn: Conn): void {
  conn.client.pause();
  conn.proto!.peekedFd = socketFd(conn.client);
  look(conn, 0);
}

/** Peek at what is queued and feed the hello phase if anything new came; else wait for more. */
function look(conn: Conn, bits: number): void {
  const p = conn.proto!;
  const r = peek(p.peekedFd, MAX_SNIFF_BYTES);
  if (r.kind === "bytes" && r.bytes.length > p.first.length) {
    conn.lastActive = performance.now();
    helloPhase(conn, p.first.peeked(r.bytes) === "full");
    if (!(conn.flags & SNIFFING)) return stopWaiting(conn); // routed, or refused
  } else if (r.kind === "closed") {
    return abort(conn, "client_closed");
  } else if (r.kind === "error") {
    return abort(conn, r.code === "ECONNRESET" ? "client_reset" : "client_error", r.code);
  }
  // The client stopped (FIN) before its hello was whole: as the read path's end handler says.
  if (bits & NOTICE.ended) return abort(conn, p.first.length > 0 ? "incomplete_handshake" : "client_closed");
  if (waitForMore(conn) === "refused") readInstead(conn);
}

/** The epoll set would not take the socket: collect this hello by reading, from its first byte. */
function readInstead(conn: Conn): void {
  const p = conn.proto!;
  p.peekedFd = -1;
  p.first = new FirstBytes();
  conn.client.resume();
}

/**
 * The peek path of the sniff stage (modules with `peeks`, native library loaded): the first bytes are
 * read with MSG_PEEK (src/native/peek.ts) and stay in the kernel, so a passthrough relays the
 * connection from its first byte with nothing replayed (the userspace relay just resumes the socket;
 * a kernel engine takes the fds with the hello still queued) and a terminating route lets upgradeTLS
 * read the hello from the socket itself.
 *
 * - The socket is paused at accept, before Bun reads anything: Bun calls `open` before its first read
 *   (verified on Bun 1.4.5: with TCP_DEFER_ACCEPT the whole hello is queued at `open`, a peek there
 *   sees all of it, and resume() later delivers the same bytes).
 * - "Need more" waits for new bytes without a timer: a waiting socket sits in the native library's
 *   edge-triggered epoll set, whose bell thread rings a pipe that Bun reads (src/native/peek-wait.ts);
 *   nothing runs while nothing arrives. A retry timer was measured and rejected: a Bun timer tick
 *   costs ~45 µs of CPU whatever it does (4% of a core at a 1 ms period, which a split hello's latency
 *   needs), and under a slowloris it would peek every stalled socket on every retry (a peek costs
 *   ~0.9 µs); the drain of the epoll set with no news costs ~0.2 µs, and a notice reaches JS in ~0.2 ms.
 * - The fd is used only between Bun's `open` and the socket's end as Bun sees it: Bun closes an fd
 *   inside its close handler, which finishes the connection (and so stops its wait) at once, so a
 *   number Bun reuses for a later connection is never touched under this one's name.
 * - Bounds are the read path's: MAX_SNIFF_BYTES (one peek of at most that much) and
 *   handshakeTimeoutMs (the sweeper).
 * - A refusal discards the queued bytes before closing ({@link discardUnread}, from abort), so it
 *   looks to the client as a refusal after reading does.
 * - If the epoll set refuses a socket (out of watches), that connection falls back to reading.
 * Notices reach the pipeline through the one receiver it sets with {@link whenMoreArrives}: this file
 * calls no stage.
 * @module
 */
import { Conn, FINISHED, SNIFFING, UPSTREAM_OPEN } from "./conn.ts";
import { MAX_SNIFF_BYTES, replaceWithPeeked } from "../sniff/collect.ts";
import { peek } from "../native/peek.ts";
import { socketFd } from "../net/socket-fd.ts";
import { discardQueued, onArrivals, unwatchArrivals, watchArrivals } from "../native/peek-wait.ts";

export { NOTICE } from "../native/peek-wait.ts";

/** What a peek found. */
export type Peeked =
  | "more" // new bytes: the collector holds everything queued so far
  | "nothing-new"
  | { readonly reason: "client_closed" | "client_reset" | "client_error"; readonly detail?: string };

/** Connections waiting for more peeked bytes, by notice token. */
const waiting = new Map<number, Conn>();
let nextToken = 0;
let receiver: (conn: Conn, bits: number) => void = () => {};

onArrivals((token, bits) => {
  const conn = waiting.get(token);
  if (!conn) return; // finished in this same batch of notices
  if (conn.flags & FINISHED || !(conn.flags & SNIFFING)) return stopWaiting(conn);
  receiver(conn, bits);
});

/** Who is told when bytes (bits: NOTICE.arrived), a FIN or a reset (NOTICE.ended) reach a waiting connection. */
export function whenMoreArrives(onMore: (conn: Conn, bits: number) => void): void {
  receiver = onMore;
}

/** Collect `conn`'s first bytes by peeking from now on (its socket is paused: Bun reads nothing). */
export function startPeeking(conn: Conn): void {
  conn.client.pause();
  conn.intake!.peekedFd = socketFd(conn.client);
}

/** Peek at what is queued; "more" when it grew (the collector then holds all of it). */
export function peekAgain(conn: Conn): Peeked {
  const intake = conn.intake!;
  const r = peek(intake.peekedFd, MAX_SNIFF_BYTES);
  if (r.kind === "bytes" && r.bytes.length > intake.first.size) {
    conn.lastActive = performance.now();
    replaceWithPeeked(intake.first, r.bytes);
    return "more";
  }
  if (r.kind === "closed") return { reason: "client_closed" };
  if (r.kind === "error") return { reason: r.code === "ECONNRESET" ? "client_reset" : "client_error", detail: r.code };
  return "nothing-new";
}

/** Wait for more of `conn`'s peeked bytes; "refused" when the epoll set will not take its socket. */
export function waitForMore(conn: Conn): "waiting" | "refused" {
  const intake = conn.intake!;
  if (intake.waitToken) return "waiting";
  nextToken = (nextToken % 0xffff_ffff) + 1;
  if (watchArrivals(intake.peekedFd, nextToken) !== null) return "refused";
  intake.waitToken = nextToken;
  waiting.set(nextToken, conn);
  return "waiting";
}

/** No more notices for `conn` (its first bytes are whole, refused, or the connection finished). */
export function stopWaiting(conn: Conn): void {
  const intake = conn.intake!;
  if (!intake.waitToken) return;
  waiting.delete(intake.waitToken);
  unwatchArrivals(intake.peekedFd);
  intake.waitToken = 0;
}

/** The epoll set would not take the socket: collect by reading instead, from the first byte. */
export function readInstead(conn: Conn): void {
  const intake = conn.intake!;
  intake.peekedFd = -1;
  intake.first.clear();
  conn.client.resume();
}

/**
 * Before `conn` is closed early: throw away its peeked bytes if they are still queued (no relay or
 * TLS has read them), so the client gets FIN as after a read, not the RST of a close with unread
 * bytes. A passthrough counts them in, as the read path counts the hello it was about to replay.
 */
export function discardUnread(conn: Conn): void {
  const intake = conn.intake;
  if (!intake || !intake.helloInKernel || intake.raw !== null || conn.flags & UPSTREAM_OPEN) return;
  const discarded = discardQueued(intake.peekedFd);
  if (conn.facts!.tls === "passthrough") conn.bytesIn += discarded;
}

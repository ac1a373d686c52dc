/**
 * Connections whose peeked ClientHello is not whole yet, waiting for more bytes (src/proxy/hello-peek.ts
 * peeks; this module keeps the waiting list). A waiting socket sits in the native library's
 * edge-triggered epoll set, whose bell thread rings a pipe that Bun reads (src/native/peek-wait.ts):
 * nothing runs while nothing arrives. A retry timer was measured and rejected: a Bun timer tick costs
 * ~45 µs of CPU whatever it does (4% of a core at a 1 ms period, which a split hello's latency
 * needs), and under a slowloris it would peek every stalled socket on every retry (a peek costs
 * ~0.9 µs); the drain of the epoll set with no news costs ~0.2 µs, and a notice reaches JS in ~0.2 ms.
 *
 * The fd is used only between Bun's `open` and the socket's end as Bun sees it: Bun closes an fd
 * inside its close handler, which finishes the connection (and so stops its wait) at once, so a
 * number Bun reuses for a later connection is never touched under this one's name.
 * Kept apart from hello-peek.ts so that finish.ts can stop a wait without importing the tls stage.
 * @module
 */
import { Conn, FINISHED, SNIFFING, UPSTREAM_OPEN } from "./conn.ts";
import { discardQueued, onArrivals, unwatchArrivals, watchArrivals } from "../native/peek-wait.ts";

/** Connections waiting for more hello bytes, by notice token. */
const waiting = new Map<number, Conn>();
let nextToken = 0;
let onMore: (conn: Conn, bits: number) => void = () => {};

onArrivals((token, bits) => {
  const conn = waiting.get(token);
  if (!conn) return; // finished in this same batch of notices
  if (conn.flags & FINISHED || !(conn.flags & SNIFFING)) return stopWaiting(conn);
  onMore(conn, bits);
});

/** Who is told when bytes (bits: NOTICE.arrived), a FIN or a reset (NOTICE.ended) reach a waiting connection. */
export function whenMoreArrives(receiver: (conn: Conn, bits: number) => void): void {
  onMore = receiver;
}

/** Wait for more of `conn`'s peeked bytes; "refused" when the epoll set will not take its socket. */
export function waitForMore(conn: Conn): "waiting" | "refused" {
  const p = conn.proto!;
  if (p.waitToken) return "waiting";
  nextToken = (nextToken % 0xffff_ffff) + 1;
  if (watchArrivals(p.peekedFd, nextToken) !== null) return "refused";
  p.waitToken = nextToken;
  waiting.set(nextToken, conn);
  return "waiting";
}

/** No more notices for `conn` (its hello is whole, refused, or the connection finished). */
export function stopWaiting(conn: Conn): void {
  const p = conn.proto!;
  if (!p.waitToken) return;
  waiting.delete(p.waitToken);
  unwatchArrivals(p.peekedFd);
  p.waitToken = 0;
}

/**
 * Before `conn` is closed early: throw away its peeked bytes if they are still queued (no relay or
 * TLS has read them), so the client gets FIN as after a read, not the RST of a close with unread
 * bytes. A passthrough counts them in, as the read path counts the hello it was about to replay.
 */
export function discardUnread(conn: Conn): void {
  const p = conn.proto;
  if (!p || !p.helloInKernel || p.raw !== null || conn.flags & UPSTREAM_OPEN) return;
  const discarded = discardQueued(p.peekedFd);
  if (p.tls === "passthrough") conn.bytesIn += discarded;
}

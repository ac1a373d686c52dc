/**
 * The state of one proxied connection. One flat object per connection, referenced from both
 * sockets' `data`, so the relay's handlers are shared by every socket and allocate nothing per read.
 * @module
 */
import type { Socket } from "bun";
import type { Counters } from "../control/metrics.ts";
import type { ListenerRuntime, RouteRuntime } from "./runtime.ts";
import type { GateTicket } from "../protect/gate.ts";
import type { Intake } from "./intake.ts";
import type { ConnFacts } from "../protocol/facts.ts";
import { ByteQueue } from "../net/byte-queue.ts";

/** Bit flags of {@link Conn.flags}. */
export const CLIENT_EOF = 1; // the client sent FIN
export const UPSTREAM_EOF = 2; // the upstream sent FIN
export const UPSTREAM_SHUT = 4; // we sent FIN to the upstream
export const CLIENT_SHUT = 8; // we sent FIN to the client
export const UPSTREAM_OPEN = 16; // connected, relaying
export const RESPONDING = 32; // a static responder owns the connection
export const FINISHED = 64; // counted and logged; any further event is ignored
export const HANDED_OVER = 128; // a native engine relays the bytes; Bun's events are not ours to act on
export const DIALING = 256; // connecting to the upstream since lastActive (the sweeper times it out)
export const KERNEL_LATER = 512; // relay "auto": hand over to the splice engine once busy
export const SNIFFING = 1024; // reading the first bytes (the protocol module's sniff) before routing
export const HANDSHAKING = 2048; // between accept and dialing on a sniffing listener (handshakeTimeoutMs)
export const USERSPACE_ONLY = 4096; // never handed to a kernel engine (the proxy terminates TLS on it)
export const WRITING_UP = 8192; // inside upstream.write(): a chunk arriving now (re-entrantly) must queue
export const WRITING_DOWN = 16384; // inside client.write(), likewise
export const UPSTREAM_HANDSHAKE = 32768; // connected; the protocol module's upstream handshake runs before the relay
export const RELAYED_BY_SPLICE = 65536; // the splice engine took the pair (the access log's relay)
export const RELAYED_BY_SOCKMAP = 131072; // the sockmap engine took it
export const RELAYED_BY_URING = 262144; // the uring engine took it
export const LOGGED_BY_MODULE = 524288; // a served connection whose module writes its own access-log records (one per message)
export const READING_PROXY_HEADER = 1048576; // a trusted proxy's PROXY header is awaited before anything else (acceptProxyProtocol)
export const NATIVE_ACCEPTED = 2097152; // accepted by the uring engine (src/listen/native-accept.ts): no Bun socket; the engine dials and relays
/** Connections whose Bun socket events the userspace relay must ignore. */
export const NOT_OURS = FINISHED | HANDED_OVER;

/**
 * Bound of each direction's pending bytes. A source is paused as soon as its destination falls
 * behind, so what waits is one read's tail plus what the socket still delivers after pause() (Bun
 * 1.4.5's TLS sockets do: 9 KiB tail + 128 bytes seen under pgbench -i). Past this bound
 * pause() is not holding, and the connection is reset rather than buffered without end.
 */
const PENDING_LIMIT = 1024 * 1024;
const PENDING_LIMIT_REASON = "relay_overflow";

/** True when nothing waits in this queue. */
export const nothingPending = (q: ByteQueue | null): boolean => q === null || q.size === 0;

export class Conn {
  flags = 0;
  route: RouteRuntime | null = null;
  routeCounters: Counters;
  upstream: Socket<Conn> | null = null;
  /** Index of the upstream in its route's balancer, to release it at the end; -1 when none. */
  upstreamIndex = -1;
  upstreamText: string | null = null;
  /** The address dialled for upstreamText (its name resolved): `ip:port`, `[v6]:port` or `unix:/path`. */
  upstreamAddr: string | null = null;
  /** Bytes from the client that the upstream has not taken yet, in order; made on first use. */
  pendingUp: ByteQueue | null = null;
  /** Bytes from the upstream that the client has not taken yet, in order; made on first use. */
  pendingDown: ByteQueue | null = null;
  bytesIn = 0;
  bytesOut = 0;
  readonly startedAt = performance.now();
  lastActive = this.startedAt;
  /** What the gate counted for this connection (given back at finish); null when nothing. */
  gateTicket: GateTicket | null = null;
  /** First reason wins: later events of a closing connection do not overwrite why it closed. */
  reason: string | null = null;
  /** What the protocol learned (src/protocol/facts.ts); null where it learns nothing (tcp). */
  facts: ConnFacts | null = null;
  /** The bytes and sockets of the stages before routing (src/proxy/intake.ts); null where nothing is read first. */
  intake: Intake | null = null;

  /**
   * Read at accept: Bun cannot tell a closed socket's peer any more. Replaced once, before the gate,
   * by the source of a trusted proxy's PROXY header (src/proxy/proxy-header-stage.ts).
   */
  clientIp: string;
  clientPort: number;

  constructor(
    readonly id: number,
    /** The listener serving it: the one it was accepted on, or the one a chaining route moved it into (src/proxy/chain.ts). */
    public listener: ListenerRuntime,
    /** The client socket; after TLS termination, the TLS socket over the accepted one. */
    public client: Socket<Conn>,
  ) {
    this.routeCounters = listener.unrouted;
    // A unix-socket client has no address or port.
    this.clientIp = client.remoteAddress || "unix";
    this.clientPort = client.remotePort || 0;
  }

  /**
   * Keep this connection in the userspace relay for its whole life: the TLS stage calls it for
   * connections whose TLS the proxy terminates (their plaintext exists only in JS).
   */
  markUserspaceOnly(): void {
    this.flags = (this.flags | USERSPACE_ONLY) & ~KERNEL_LATER;
  }

  /** The engine that relayed the bytes once the upstream was open (the access log's `relay`). */
  get relay(): "userspace" | "splice" | "sockmap" | "uring" {
    const f = this.flags;
    return f & RELAYED_BY_SOCKMAP ? "sockmap" : f & RELAYED_BY_URING ? "uring" : f & RELAYED_BY_SPLICE ? "splice" : "userspace";
  }

  /** The queue of bytes waiting for the upstream (made on first use). */
  upQueue(): ByteQueue {
    return (this.pendingUp ??= new ByteQueue(PENDING_LIMIT, PENDING_LIMIT_REASON));
  }

  /** The queue of bytes waiting for the client (made on first use). */
  downQueue(): ByteQueue {
    return (this.pendingDown ??= new ByteQueue(PENDING_LIMIT, PENDING_LIMIT_REASON));
  }

  /** Note why the connection is ending, unless a reason is already known. */
  because(reason: string): void {
    this.reason ??= reason;
  }
}

/**
 * Per-connection state of listeners that sniff before routing (tls, postgres): the first bytes,
 * the facts read from them, and how TLS was handled. One object, made only on those listeners, so a
 * plain TCP connection carries a single null field for all of it.
 * @module
 */
import type { Socket } from "bun";
import { FirstBytes } from "../sniff/collect.ts";
import type { Conn } from "./conn.ts";

/** Shared by every connection whose first bytes were released (it is never pushed to). */
const EMPTY = new FirstBytes();

export type SniffPhase = "tls-hello" | "pg-startup";

export class ProtoState {
  first = new FirstBytes();
  sni: string | null = null;
  /** The protocols the client's hello offered, in its order. */
  alpn: readonly string[] = [];
  /** The protocol selected when the proxy terminated TLS (null: none, or not terminated). */
  negotiatedAlpn: string | null = null;
  ja3: string | null = null;
  ja4: string | null = null;
  tls: "terminate" | "passthrough" | "none" = "none";
  /** Verified client certificate (mTLS): its subject, e.g. "CN=alice,O=Example". */
  clientIdentity: string | null = null;
  database: string | null = null;
  user: string | null = null;
  /** The accepted TCP socket once a TLS socket runs over it (its events are not the relay's). */
  raw: Socket<Conn> | null = null;
  /**
   * The accepted socket's fd when its first bytes were peeked, not read (src/proxy/hello-peek.ts):
   * they wait in the kernel until the relay reads them. -1 when they were read.
   */
  peekedFd = -1;
  /** Nonzero while waiting for more bytes of a peeked hello (its notice token). */
  waitToken = 0;
  /** postgres: still reading the backend's first messages for its BackendKeyData (src/postgres/cancel.ts). */
  watchingBackend = true;
  /** postgres: the backend's bytes of a message not yet whole, while watching. */
  backendTail: Uint8Array | null = null;

  constructor(public phase: SniffPhase) {}

  /** Whether the first bytes are still in the kernel (peeked), so nothing has to be sent on for them. */
  get helloInKernel(): boolean {
    return this.peekedFd >= 0;
  }

  /** The collected bytes have been handed on (replayed, given to TLS, sent to the backend): drop them. */
  release(): void {
    this.first = EMPTY;
  }

  /** Start reading a new message from scratch (after a PostgreSQL SSLRequest/GSSENCRequest, or TLS). */
  restart(phase: SniffPhase): void {
    this.phase = phase;
    this.first = new FirstBytes();
  }
}

/**
 * The JS side of a connection the uring engine accepted (native accept, src/listen/native-accept.ts):
 * there is no Bun socket, only the engine's token. The pipeline runs its stages on a {@link Conn} as
 * for any tcp connection (gate, route table or resolver, balancer), with a {@link NativeClient} in
 * place of the client socket; at the dial it asks the engine to connect ({@link dialNatively}) instead
 * of Bun. From then on the connection is HANDED_OVER: its record arrives in src/relay/handover.ts
 * like a handed-over pair's, and finishing it (counters, access log, resolver onDisconnect) is the
 * same code.
 *
 * What JS keeps per connection: the Conn (route, counters, gate ticket, balancer slot, client
 * address, start time: what the access log and the metrics need at the end) and this small client.
 * @module
 */
import type { Socket } from "bun";
import { Conn, DIALING, HANDED_OVER, NATIVE_ACCEPTED, RELAYED_BY_URING, UPSTREAM_OPEN } from "../proxy/conn.ts";
import type { DialTarget } from "../upstream/endpoint.ts";
import { uringDial, uringKill, uringRefuse } from "../native/uring-accept.ts";
import { adoptNative, handedOverConn } from "./handover.ts";
import { abort } from "../proxy/finish.ts";
import { notifyConnect } from "./userspace.ts";
import { resetOnClose } from "../native/sockets.ts";

/**
 * Stands in for the client socket of a natively accepted connection: what the stages before the
 * dial read (address, local port) and do (pause: nothing to do; end: a refusal; terminate: a reset).
 */
export class NativeClient {
  /**
   * The local port, shifted left by 2, with DIALLED and CLOSED: one field for three (the client
   * lives as long as its connection; every field is 8 bytes of each idle connection).
   */
  #bits: number;

  /** The engine's upstream socket once connected (-1 before). */
  upstreamFd = -1;
  /** The connection (the pipeline's accept sets it, as on a Bun socket); declared so it is stored inline. */
  data: Conn | undefined = undefined;

  constructor(
    readonly token: number,
    readonly remoteAddress: string,
    readonly remotePort: number,
    localPort: number,
    /** The engine's client socket: JS only ever sets SO_LINGER 0 on it ({@link terminate}). */
    readonly fd: number,
  ) {
    this.#bits = localPort << 2;
  }

  get localPort(): number {
    return this.#bits >>> 2;
  }

  pause(): void {}
  resume(): void {}
  setKeepAlive(): boolean {
    return true; // the engine's listening socket has SO_KEEPALIVE, which accepted sockets inherit
  }
  write(): number {
    return 0;
  }

  /** A refusal before the dial (abort): FIN. After the dial the engine ends the connection itself. */
  end(): void {
    if (this.#bits & (DIALLED | CLOSED)) return;
    this.#bits |= CLOSED;
    uringRefuse(this.token, false);
  }

  /**
   * A reset (drain deadline, a second stop signal): RST, before or after the dial. SO_LINGER 0 is
   * set here, at once: the process may exit before the ring thread takes the command, and the
   * kernel's close at exit must reset too. (The sockets are the engine's until the pair's record,
   * which has not come: reset() is only called on connections not finished.)
   */
  terminate(): void {
    if (this.#bits & CLOSED) return;
    this.#bits |= CLOSED;
    resetOnClose(this.fd);
    resetOnClose(this.upstreamFd);
    if (this.#bits & DIALLED) uringKill(this.token);
    else uringRefuse(this.token, true);
  }

  /** The dial is the engine's from now on. */
  dialled(): void {
    this.#bits |= DIALLED;
  }
}

/** NativeClient bits: a dial was asked for (the engine owns the sockets until the record). */
const DIALLED = 1;
/** Refused or reset: nothing more to tell the engine. */
const CLOSED = 2;

/** conn.upstream of a natively dialled connection once connected: the access log's `relay` needs one. */
const NATIVE_UPSTREAM = { end() {}, terminate() {}, pause() {}, resume() {} } as unknown as Socket<Conn>;

/** A Conn for a natively accepted client (the pipeline's accept stage takes it from here). */
export function nativeClient(token: number, ip: string, port: number, localPort: number, fd: number): Socket<Conn> {
  return new NativeClient(token, ip, port, localPort, fd) as unknown as Socket<Conn>;
}

/** Whether the uring engine accepted `conn` (its client is a {@link NativeClient}, not a Bun socket). */
export function acceptedNatively(conn: Conn): boolean {
  return conn.client instanceof NativeClient;
}

/**
 * dial, natively accepted: the engine connects (with the listener's connect timeout, a linked
 * timeout on the ring) and relays; nothing in JS times it any more.
 */
export function dialNatively(conn: Conn, target: DialTarget): void {
  const client = conn.client as unknown as NativeClient;
  const { connectTimeoutMs, idleTimeoutMs } = conn.listener.config;
  const refused = uringDial(client.token, conn.id, target, connectTimeoutMs, idleTimeoutMs);
  if (refused) return abort(conn, "upstream_error", `the uring engine refused the dial: ${refused}`);
  client.dialled();
  conn.flags = (conn.flags | HANDED_OVER | RELAYED_BY_URING | NATIVE_ACCEPTED) & ~DIALING;
  adoptNative(conn);
}

/** The engine's `connected` event: count the connect time, mark the connection open, tell the resolver. */
export function nativeConnected(id: number, micros: number, fd: number): void {
  const conn = handedOverConn(id);
  if (!conn || conn.upstream) return;
  (conn.client as unknown as NativeClient).upstreamFd = fd;
  conn.upstream = NATIVE_UPSTREAM;
  conn.flags |= UPSTREAM_OPEN;
  conn.routeCounters.observeConnect(micros / 1000);
  notifyConnect(conn);
}

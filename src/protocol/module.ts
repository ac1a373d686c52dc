/**
 * The protocol module interface: what a listener's `protocol` contributes to the one pipeline of
 * src/proxy/pipeline.ts. The pipeline owns the order of the stages, the sockets, the timeouts and
 * every close; a module owns its protocol's bytes and facts. It answers the pipeline with named
 * steps and never calls the next stage itself, so a module imports nothing of the pipeline.
 *
 *   accept ─► gate ─► greeting? ─► sniff* ─► route ─► routed ─► [tls] ─► dial ─► upstreamHandshake? ─► relay ─► finish
 *                                         └─► serve (the module owns the connection: HTTP) ─► finish
 *
 * Members are listed in the order the pipeline uses them. Optional members have the default said in
 * their comment; a module that leaves them all out is a plain TCP relay (src/tcp/module.ts).
 * src/protocol/registry.ts maps a listener's `protocol` to its module; nothing else compares names.
 * @module
 */
import type { SocketHandler } from "bun";
import type { Protocol } from "../config/types.ts";
import type { ByteQueue } from "../net/byte-queue.ts";
import type { Conn } from "../proxy/conn.ts";
import type { RouteRuntime } from "../proxy/runtime.ts";

/** A module's answer to the bytes collected so far. */
export type SniffStep =
  /** Not enough to decide: the pipeline reads (or peeks) more, within handshakeTimeoutMs and the collector's bound. */
  | { readonly kind: "need-more" }
  /** The facts needed are in conn.facts: route now. Bytes to send the upstream first are in conn.upQueue(). */
  | { readonly kind: "route" }
  /**
   * Decrypt before routing, with the listener's certificate (chosen by SNI), then sniff again over the
   * plaintext (PostgreSQL: the StartupMessage is inside TLS). The collected bytes are the ClientHello.
   */
  | { readonly kind: "terminate-tls" }
  /** The module ended the connection itself (a PostgreSQL CancelRequest, sent on and closed). */
  | { readonly kind: "handled" }
  /** Not this protocol, or refused by its rules: closed, counted under switchyard_refused_total{protocol,reason}. */
  | { readonly kind: "refuse"; readonly reason: string; readonly detail?: string };

/** What to do once a route (or a resolver answer) is chosen. */
export type RoutedStep =
  /** Connect to an upstream of the route. */
  | { readonly kind: "dial" }
  /** Decrypt first with the route's TLS settings (conn.route.tls), then connect. */
  | { readonly kind: "terminate-tls" };

/** A module's answer during its upstream handshake. */
export type HandshakeStep =
  /** Waiting for the upstream's next bytes (bounded by connectTimeoutMs, as the dial is). */
  | { readonly kind: "need-more" }
  /** Done: the relay takes over; bytes still waiting for the client are in conn.downQueue(). */
  | { readonly kind: "relay" }
  /** The upstream answered wrong: the connection closes with this reason. */
  | { readonly kind: "fail"; readonly reason: string; readonly detail?: string }
  /**
   * The module asked the upstream for TLS in its protocol (MySQL's SSLRequest): the pipeline starts
   * TLS over the connected socket with the route's upstreamTls and calls `tlsStarted` once it is up.
   * Only for modules with `tlsStarted`.
   */
  | { readonly kind: "start-tls" };

/** Steps without data, shared: answering one allocates nothing. */
export const NEED_MORE: SniffStep & HandshakeStep = { kind: "need-more" };
export const ROUTE: SniffStep = { kind: "route" };
export const TERMINATE_TLS: SniffStep & RoutedStep = { kind: "terminate-tls" };
export const HANDLED: SniffStep = { kind: "handled" };
export const DIAL: RoutedStep = { kind: "dial" };
export const RELAY: HandshakeStep = { kind: "relay" };
export const START_TLS: HandshakeStep = { kind: "start-tls" };

export function refuse(reason: string, detail?: string): SniffStep {
  return detail === undefined ? { kind: "refuse", reason } : { kind: "refuse", reason, detail };
}

export interface UpstreamHandshake {
  /** Called once the upstream is connected, before any relayed byte (send a greeting reply, replay commands…). */
  start(conn: Conn): HandshakeStep;
  /** Each chunk the upstream sends until a step other than need-more is returned. */
  data(conn: Conn, chunk: Uint8Array): HandshakeStep;
  /**
   * Each chunk the client sends during the handshake (MySQL: its answer to an AuthSwitchRequest the
   * proxy relayed from the server). Present: the client is read during the handshake; absent: it is
   * paused and its bytes wait (in the kernel, or in pendingUp) for the relay.
   */
  clientData?(conn: Conn, chunk: Uint8Array): HandshakeStep;
  /**
   * Upstream TLS begins inside this handshake (MySQL: after the server's greeting), not at connect:
   * present, the dial is plain TCP even on routes with upstreamTls, and the module answers
   * `start-tls` when it wants it. Called once the TLS handshake succeeded (and the certificate was
   * verified, unless upstreamTls.verify is false); `conn.upstream` is the TLS socket from then on,
   * and the connection stays in the userspace relay. A failed handshake closes the connection with
   * `upstream_tls_failed`. Default: none (upstream TLS, if any, starts at connect).
   */
  tlsStarted?(conn: Conn): HandshakeStep;
}

/**
 * A module that owns its connections after the sniff (ProtocolModule.serve). The pipeline keeps the
 * gate, the sniff, idleTimeoutMs (on conn.lastActive, which the module stamps) and the final count
 * and close (src/proxy/finish.ts, which the module ends the connection through).
 */
export interface ServedConnections {
  /** The sniff answered `route`: the client is paused, conn.intake holds what was collected. */
  start(conn: Conn): void;
  /** A client chunk, once started. */
  data(conn: Conn, chunk: Uint8Array): void;
  /** The client socket can take more. */
  drain(conn: Conn): void;
  /** The client's FIN. */
  end(conn: Conn): void;
  /** The client socket closed (also for a connection refused before `start`): release what the module holds; the pipeline finishes the connection after. */
  close(conn: Conn): void;
  /**
   * The configuration the connection started under is retired (a reload applied another, or the
   * service drains): end the connection at the next message boundary, at once if it is between
   * messages (HTTP: an idle keep-alive connection closes now, a busy one after its current
   * response, which says `Connection: close`). Called once per connection and change, also before
   * `start` (the sniff may still be reading the first message). Default: the connection runs to
   * its end as a relayed one does.
   */
  retire?(conn: Conn): void;
  /**
   * The module writes one access-log record per message (HTTP: per request, SPEC.md), so a started
   * connection gets none of its own at its end (one refused before `start` still does). Default false.
   */
  readonly logsEachMessage?: boolean;
}

export interface ProtocolModule {
  /** The `protocol` value of the listeners this module serves. */
  readonly name: Protocol;

  /**
   * Who sends the first byte. "client": the listener reads before routing (`sniff` is required) and
   * gets TCP_DEFER_ACCEPT. "proxy": the proxy greets (`greeting`) and then reads (SMTP, MySQL).
   * "unknown": nothing is read before the upstream is dialled (tcp: any protocol may ride it).
   */
  readonly speaksFirst: "client" | "proxy" | "unknown";

  /** Whether the listener loads certificates (defaultCert, certDir) for TLS it ends itself. Default false. */
  readonly certificates?: boolean;

  /**
   * TLS ended before a route is known, with the listener's certificates and these ALPN protocols
   * (PostgreSQL: "postgresql"); null or absent when only routes terminate TLS.
   */
  readonly tlsBeforeRouting?: { readonly alpn: readonly string[] } | null;

  /**
   * Whether the first bytes may be read with MSG_PEEK and left in the kernel (when the native library
   * can wait on peeked sockets), so a passthrough relays from the first byte with nothing replayed.
   * Only for protocols whose sniffer never has to consume or answer bytes. Default false: read.
   */
  readonly peeks?: boolean;

  /** speaksFirst "proxy": the bytes sent at accept, before reading. Default: none. */
  greeting?(conn: Conn): Uint8Array | null;

  /**
   * Make the protocol's own per-connection state (kept in conn.intake.state, read only by the module).
   * Called at accept on listeners that read before routing. Default: none.
   */
  newState?(conn: Conn): object;

  /**
   * The bytes collected so far (all of them, from the first; `full` when the collector's bound is
   * reached, so need-more is then a refusal). Called after each read until the answer is not
   * need-more; again after terminate-tls, over the plaintext. Required unless speaksFirst is "unknown".
   */
  sniff?(conn: Conn, collected: ByteQueue, full: boolean): SniffStep;

  /**
   * Protocols that route per message, not per connection (HTTP: each request is routed, answered or
   * forwarded over the module's own upstream pool). Present: when sniff answers `route` the pipeline
   * calls `serve.start` instead of the route stage, and the client socket's events go to the module
   * from then on; the later stages do not run. Default: none (route once).
   */
  readonly serve?: ServedConnections;

  /**
   * A route was chosen (`route`), or the resolver module answered with an endpoint (null: there is no
   * route to consult). Move collected bytes to conn.upQueue() if the upstream must get them. Default: dial.
   */
  routed?(conn: Conn, route: RouteRuntime | null): RoutedStep;

  /** Run after the upstream connected and before the relay (SMTP banner and EHLO replay, MySQL auth). Default: none. */
  readonly upstreamHandshake?: UpstreamHandshake;

  /**
   * The relay's upstream socket handlers as this protocol needs them (PostgreSQL reads the backend's
   * startup replies as they pass). The pipeline sets `open` (and `handshake` for upstream TLS).
   * Default: the relay's (src/relay/userspace.ts).
   */
  readonly upstreamHandlers?: SocketHandler<Conn>;

  /**
   * After routing (while dialling, and in the relay), every chunk the client sends, instead of the
   * relay's forwarding: for protocols that must go on reading the client once routed (SMTP: each
   * message body is scanned for bare LF/CR, a later RCPT for another route's domain is answered
   * 451). The module forwards what may pass with the relay's own handler (src/relay/userspace.ts
   * CLIENT_HANDLERS.data, which keeps order and backpressure) and answers the rest itself. Only
   * listeners that read first use it; the pipeline picks these handlers once per module, so other
   * protocols' reads pay nothing. Default: none (the relay forwards every byte).
   */
  relayClientData?(conn: Conn, chunk: Uint8Array): void;

  /**
   * Bytes to send a client refused before any upstream spoke to it, in its protocol (a TLS alert, a
   * PostgreSQL ErrorResponse), or null to close without a word. Default: null.
   */
  farewell?(conn: Conn, reason: string): Uint8Array | null;
}

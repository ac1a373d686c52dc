/**
 * The mysql module's own per-connection state (ProtocolModule.newState): where the connection
 * phase stands, the client's HandshakeResponse41 (rebuilt for the server once it is known), the
 * server's greeting, and the sequence ids on each side while authentication is relayed.
 * @module
 */
import { ByteQueue } from "../net/byte-queue.ts";
import type { HandshakeResponse41, RawClientFields } from "./handshake-response.ts";
import type { InitialHandshake } from "./initial-handshake.ts";

/** Authentication packets are small; a server's RSA public key (PEM) is under 1 KiB. */
export const MAX_AUTH_MESSAGE = 64 * 1024;

export type MysqlPhase =
  /** Waiting for the client's SSLRequest or HandshakeResponse41. */
  | "client-hello"
  /** After an SSLRequest: the ClientHello comes next. */
  | "tls-hello"
  /** Routed; waiting for the chosen server's greeting. */
  | "server-greeting"
  /** The server was sent an SSLRequest (route upstreamTls): TLS to it is being set up. */
  | "server-tls"
  /** The client was sent an AuthSwitchRequest with the server's scramble: its answer comes next. */
  | "client-answer"
  /** The HandshakeResponse41 went to the server: relaying the rest of authentication until OK or ERR. */
  | "auth";

export class MysqlState {
  phase: MysqlPhase = "client-hello";
  /** The sequence id of the next packet to the client (the greeting was 0). */
  clientSeq = 1;
  /** The client's response to the proxy's greeting, once read. */
  response: HandshakeResponse41 | null = null;
  /** Its user, database and attributes as sent, passed on byte for byte. */
  responseBytes: RawClientFields | null = null;
  /** The server's greeting, once read. */
  server: InitialHandshake | null = null;
  /** Capabilities in force between client and server (the intersection; CLIENT_SSL when the server is on TLS). */
  capabilities = 0;
  /** MariaDB's extended capabilities in force (0 unless both sides are MariaDB). */
  mariadbCapabilities = 0;
  /** The sequence id of the HandshakeResponse41 to the server: 1, or 2 after the proxy's SSLRequest. */
  serverSeq = 1;
  /** client sequence id − server sequence id during the relayed authentication. */
  seqDelta = 0;
  /** A whole ERR packet to end the client with (the server's own refusal, renumbered). */
  farewell: Uint8Array | null = null;
  /**
   * Bytes of a message not yet whole, from the server and from the client during authentication.
   * Not bounded here: the framer refuses a message longer than MAX_AUTH_MESSAGE as soon as its header
   * is in (message_too_large), and whole messages are taken at once, so what waits is one incomplete
   * message and at most the chunk that brought it. That chunk may be large and legitimate: over TLS
   * the server's OK arrives with the first relayed bytes after it in one read (the relay's queue
   * bounds those: upstream-auth.ts refuses with relay_overflow rather than drop any).
   */
  readonly fromServer = new ByteQueue(Number.POSITIVE_INFINITY, "unbounded (see above)");
  readonly fromClient = new ByteQueue(Number.POSITIVE_INFINITY, "unbounded (see above)");
}

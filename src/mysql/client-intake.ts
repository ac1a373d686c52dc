/**
 * The mysql module's sniff: the client's answer to the proxy's greeting.
 *
 *   SSLRequest (CLIENT_SSL, 32 bytes, sequence 1) ─► the ClientHello follows at once ─► TLS with the
 *     listener's certificate ─► HandshakeResponse41 (sequence 2) over TLS
 *   HandshakeResponse41 (sequence 1) ─► facts user, database ─► route
 *
 * The response's auth data answers the proxy's scramble and is useless to any server: it is kept
 * (capabilities, user, database, attributes) and rebuilt for the chosen server once its greeting is
 * read (src/mysql/upstream-auth.ts). Nothing is sent on yet.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html
 * @module
 */
import type { Conn } from "../proxy/conn.ts";
import type { ByteQueue } from "../net/byte-queue.ts";
import { NEED_MORE, ROUTE, TERMINATE_TLS, refuse, type SniffStep } from "../protocol/module.ts";
import { readHello } from "../tls/hello.ts";
import { CLIENT_PLUGIN_AUTH, CLIENT_SECURE_CONNECTION, CLIENT_SSL, has } from "./capabilities.ts";
import { parseClientHandshakeKeepingBytes } from "./handshake-response.ts";
import { frameMessage, messagePayload } from "./packet-framer.ts";
import { MAX_AUTH_MESSAGE, type MysqlState } from "./state.ts";

export function sniffClient(conn: Conn, state: MysqlState, collected: ByteQueue, full: boolean): SniffStep {
  if (state.phase === "tls-hello") return readHello(conn, collected.bytes(), full) ?? startTls(state);
  const bytes = collected.bytes();
  const frame = frameMessage(bytes, 0, MAX_AUTH_MESSAGE);
  if (frame.kind === "need-more") return full ? refuse("malformed_handshake", "handshake response too long") : NEED_MORE;
  if (frame.kind === "error") return refuse("malformed_handshake", frame.reason);
  if (frame.sequenceId !== state.clientSeq) return refuse("malformed_handshake", `sequence id ${frame.sequenceId}, expected ${state.clientSeq}`);
  const { parsed, raw } = parseClientHandshakeKeepingBytes(messagePayload(bytes, 0, frame));
  if (parsed.kind === "error") return refuse("malformed_handshake", parsed.reason);
  const facts = conn.facts!;
  state.clientSeq = (frame.lastSequenceId + 1) & 0xff;

  if (parsed.kind === "ssl-request") {
    if (facts.tls !== "none") return refuse("malformed_handshake", "SSLRequest inside TLS");
    if (!offersTls(conn)) return refuse("malformed_handshake", "SSLRequest, but the proxy offered no TLS");
    collected.consume(frame.size);
    state.phase = "tls-hello";
    // The client starts TLS without waiting for an answer: the hello may be here already.
    return collected.size > 0 ? readHello(conn, collected.bytes(), full) ?? startTls(state) : NEED_MORE;
  }

  const response = parsed.response;
  facts.user = response.user;
  facts.database = response.database;
  facts.connectionAttributes = response.attributes;
  // Without plugin auth the client cannot follow an AuthSwitchRequest to the real server's scramble.
  if (!has(response.capabilities, CLIENT_PLUGIN_AUTH) || !has(response.capabilities, CLIENT_SECURE_CONNECTION)) {
    return refuse("auth_switch_unsupported", `client capabilities 0x${response.capabilities.toString(16)}`);
  }
  if (has(response.capabilities, CLIENT_SSL) && facts.tls === "none") return refuse("malformed_handshake", "CLIENT_SSL set outside TLS");
  // The client waits for an answer now: bytes after its response are not MySQL's connection phase.
  // Checked last, so that a response refused for itself is refused the same way however it was read.
  if (bytes.length > frame.size) return refuse("malformed_handshake", "bytes after the handshake response");
  state.response = response;
  state.responseBytes = raw;
  conn.bytesIn += bytes.length;
  collected.clear();
  return ROUTE;
}

/** The hello is whole: end TLS; the HandshakeResponse41 comes next, encrypted. */
function startTls(state: MysqlState): SniffStep {
  state.phase = "client-hello";
  return TERMINATE_TLS;
}

/** Whether this listener offers TLS in its greeting: it has a certificate to end it with. */
export function offersTls(conn: Conn): boolean {
  return conn.listener.certs?.forName(null) != null;
}

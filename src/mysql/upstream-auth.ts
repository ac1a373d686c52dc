/**
 * The mysql module's upstream handshake: authenticate the client to the chosen server without the
 * proxy knowing any password (issue 16). The order, as seen with MariaDB 10.11 and its clients:
 *
 *   server ─► proxy   Initial Handshake (seq 0): capabilities, plugin, scramble
 *   proxy  ─► client  AuthSwitchRequest (seq n): the server's plugin and scramble
 *   client ─► proxy   auth response computed for the real server's scramble (seq n+1)
 *   proxy  ─► server  HandshakeResponse41 (seq 1): the client's user, database, attributes (as sent) and that
 *                     auth response; capabilities = client ∩ proxy greeting ∩ server, without CLIENT_SSL
 *   server ⇄ client   relayed with sequence ids shifted by n: AuthMoreData (caching_sha2_password's
 *                     fast-auth result, its RSA public key), further AuthSwitchRequests, the
 *                     client's answers — until the server's OK (the relay takes over) or ERR (the
 *                     client gets it as it was sent, and the connection ends)
 *
 * n is 2 for a client in plain text (greeting 0, response 1) and 3 after an SSLRequest. After the
 * OK every command restarts its sequence at 0, so the relay needs no rewriting and may be a kernel one.
 *
 * With upstream TLS (the route's upstreamTls), the greeting must offer CLIENT_SSL (else the
 * connection ends with `upstream_tls_unavailable`: never plaintext instead), and before the client
 * is asked anything the proxy sends the server an SSLRequest (seq 1), the pipeline starts TLS over
 * the socket (the `start-tls` step), and once it is up (tlsStarted) the exchange above continues
 * inside it, the HandshakeResponse41 being seq 2 and carrying CLIENT_SSL. Such a connection stays
 * in the userspace relay.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_ssl_request.html
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_auth_switch_request.html
 * @module
 */
import type { Conn } from "../proxy/conn.ts";
import { NEED_MORE, RELAY, START_TLS, type HandshakeStep, type UpstreamHandshake } from "../protocol/module.ts";
import { buildAuthSwitchRequest, CACHING_SHA2_PASSWORD, MYSQL_NATIVE_PASSWORD, parseAuthReply } from "./auth-packets.ts";
import { CLIENT_LONG_PASSWORD, CLIENT_PLUGIN_AUTH, CLIENT_PROTOCOL_41, CLIENT_SECURE_CONNECTION, CLIENT_SSL, has } from "./capabilities.ts";
import { PROXY_CAPABILITIES } from "./greeting.ts";
import { buildHandshakeResponse41, buildSslRequest } from "./handshake-response.ts";
import { parseInitialHandshake } from "./initial-handshake.ts";
import { frameMessage, messagePayload, renumberMessage } from "./packet-framer.ts";
import { toPackets } from "./payload-writer.ts";
import { MAX_AUTH_MESSAGE, type MysqlState } from "./state.ts";

function stateOf(conn: Conn): MysqlState {
  return conn.intake!.state as MysqlState;
}

function fail(reason: string, detail?: string): HandshakeStep {
  return detail === undefined ? { kind: "fail", reason } : { kind: "fail", reason, detail };
}

function toClient(conn: Conn, bytes: Uint8Array): void {
  conn.bytesOut += bytes.length;
  conn.client.write(bytes);
}

export const MYSQL_UPSTREAM_AUTH: UpstreamHandshake = {
  start(conn: Conn): HandshakeStep {
    stateOf(conn).phase = "server-greeting";
    return NEED_MORE;
  },

  data(conn: Conn, chunk: Uint8Array): HandshakeStep {
    const state = stateOf(conn);
    state.fromServer.push(chunk); // unbounded: the framer bounds a message (state.ts)
    for (;;) {
      const bytes = state.fromServer.bytes();
      const frame = frameMessage(bytes, 0, MAX_AUTH_MESSAGE);
      if (frame.kind === "need-more") return NEED_MORE;
      if (frame.kind === "error") return fail("upstream_bad_handshake", frame.reason);
      let step: HandshakeStep;
      switch (state.phase) {
        case "server-greeting":
          step = serverGreeting(conn, state, messagePayload(bytes, 0, frame));
          break;
        case "auth":
          step = authPacket(conn, state, bytes, frame);
          break;
        default: // the server speaks while the client is being asked: nothing it may say then
          return fail("upstream_bad_handshake", `server packet while ${state.phase}`);
      }
      if (step.kind === "relay") {
        // The OK (and anything after it) is the relay's to deliver, and counted as delivered (as toClient).
        const rest = state.fromServer.drain()!;
        const queue = conn.downQueue();
        if (!queue.push(rest)) return fail(queue.limitReason, `${rest.length} bytes came with the server's OK`);
        conn.bytesOut += rest.length;
        return step;
      }
      state.fromServer.consume(frame.size);
      // Plaintext after the greeting would be read as if it came over TLS: refused, not carried over.
      if (step.kind === "start-tls" && state.fromServer.size > 0) return fail("upstream_bad_handshake", "bytes after the greeting, before TLS");
      if (step.kind === "fail" || state.fromServer.size === 0) return step;
    }
  },

  clientData(conn: Conn, chunk: Uint8Array): HandshakeStep {
    const state = stateOf(conn);
    state.fromClient.push(chunk); // unbounded: the framer bounds a message (state.ts)
    for (;;) {
      const bytes = state.fromClient.bytes();
      const frame = frameMessage(bytes, 0, MAX_AUTH_MESSAGE);
      if (frame.kind === "need-more") return NEED_MORE;
      if (frame.kind === "error") return fail("malformed_auth_response", frame.reason);
      let step: HandshakeStep;
      if (state.phase === "client-answer") step = clientAnswer(conn, state, bytes, frame);
      else if (state.phase === "auth") step = clientAuthPacket(conn, state, bytes, frame);
      else return fail("malformed_auth_response", `client packet while ${state.phase}`);
      state.fromClient.consume(frame.size);
      if (step.kind === "fail" || state.fromClient.size === 0) return step;
    }
  },

  tlsStarted(conn: Conn): HandshakeStep {
    return askClient(conn, stateOf(conn));
  },
};

/** The route asks for TLS to the server (route upstreamTls). */
function wantsTls(conn: Conn): boolean {
  return conn.route?.config.upstreamTls != null;
}

/** The server's greeting: ask the client to answer its scramble. */
function serverGreeting(conn: Conn, state: MysqlState, payload: Uint8Array): HandshakeStep {
  const parsed = parseInitialHandshake(payload);
  if (parsed.kind === "server-error") {
    // Too many connections, host blocked: the server's own words, to the client.
    state.farewell = toPackets(payload, state.clientSeq);
    return fail("upstream_refused_connection", `${parsed.err.code}: ${parsed.err.message}`);
  }
  if (parsed.kind === "error") return fail("upstream_bad_handshake", parsed.reason);
  const server = parsed.handshake;
  if (!has(server.capabilities, CLIENT_PROTOCOL_41) || !has(server.capabilities, CLIENT_SECURE_CONNECTION)) {
    return fail("upstream_bad_handshake", "server without 4.1 authentication");
  }
  state.server = server;
  const client = state.response!;
  // What the client asked of the proxy, limited to what the server has; CLIENT_SSL only toward a server on TLS.
  const common = ((client.capabilities & PROXY_CAPABILITIES & server.capabilities) | CLIENT_PLUGIN_AUTH) & ~CLIENT_SSL;
  const mariadb = has(common, CLIENT_LONG_PASSWORD) ? 0 : (client.mariadbCapabilities & server.mariadbCapabilities) >>> 0;
  state.mariadbCapabilities = mariadb;
  if (!wantsTls(conn)) {
    state.capabilities = common >>> 0;
    return askClient(conn, state);
  }
  if (!has(server.capabilities, CLIENT_SSL)) return fail("upstream_tls_unavailable", `${conn.upstreamText}: the greeting does not offer CLIENT_SSL`);
  state.capabilities = (common | CLIENT_SSL) >>> 0;
  conn.upstream!.write(toPackets(buildSslRequest({ capabilities: state.capabilities, mariadbCapabilities: mariadb, maxPacketSize: client.maxPacketSize, characterSet: client.characterSet }), 1));
  state.serverSeq = 2;
  state.phase = "server-tls";
  return START_TLS;
}

/** The server is ready for the response: ask the client to answer its scramble. */
/**
 * PyMySQL (1.0.2, Debian 12's; asyncmy shares its code) takes everything after the plugin name of a
 * caching_sha2_password AuthSwitchRequest as the scramble, the server's trailing NUL included, and
 * so answers with a hash no server accepts (direct to a MySQL 8 that switches plugins it fails the
 * same way). Sent the bare 20 bytes it hashes the right ones; libmysqlclient and libmariadb insist
 * on the NUL (they check the length), so only a client that names itself PyMySQL gets it without.
 */
function takesNulAsScramble(state: MysqlState, plugin: string): boolean {
  return plugin === CACHING_SHA2_PASSWORD && state.response?.attributes?.get("_client_name") === "pymysql";
}

function askClient(conn: Conn, state: MysqlState): HandshakeStep {
  const server = state.server!;
  const plugin = server.authPluginName === "" ? MYSQL_NATIVE_PASSWORD : server.authPluginName;
  toClient(conn, toPackets(buildAuthSwitchRequest(plugin, server.scramble, !takesNulAsScramble(state, plugin)), state.clientSeq));
  state.phase = "client-answer";
  return NEED_MORE;
}

/** The client's answer to the switch: the HandshakeResponse41 the server gets. */
function clientAnswer(conn: Conn, state: MysqlState, bytes: Uint8Array, frame: MessageOf): HandshakeStep {
  const expected = (state.clientSeq + 1) & 0xff;
  if (frame.sequenceId !== expected) return fail("malformed_auth_response", `sequence id ${frame.sequenceId}, expected ${expected}`);
  const client = state.response!;
  const server = state.server!;
  const authResponse = messagePayload(bytes, 0, frame).slice();
  let payload: Uint8Array;
  try {
    payload = buildHandshakeResponse41({
      ...client, capabilities: state.capabilities, mariadbCapabilities: state.mariadbCapabilities, authResponse,
      authPluginName: server.authPluginName === "" ? MYSQL_NATIVE_PASSWORD : server.authPluginName,
    }, state.responseBytes);
  } catch (e) {
    return fail("malformed_auth_response", (e as Error).message);
  }
  // The server's next packet follows the response; the client's is the one after its answer.
  state.seqDelta = frame.lastSequenceId - state.serverSeq;
  state.clientSeq = (frame.lastSequenceId + 1) & 0xff;
  state.phase = "auth";
  conn.upstream!.write(toPackets(payload, state.serverSeq));
  return NEED_MORE;
}

/** A server packet while authentication is relayed. */
function authPacket(conn: Conn, state: MysqlState, bytes: Uint8Array, frame: MessageOf): HandshakeStep {
  const payload = messagePayload(bytes, 0, frame);
  const reply = parseAuthReply(payload, state.capabilities);
  // Renumbered in place: these bytes go to the client as they are.
  state.clientSeq = renumberMessage(bytes, 0, frame, (frame.sequenceId + state.seqDelta) & 0xff);
  switch (reply.kind) {
    case "ok":
      return RELAY;
    case "err":
      state.farewell = bytes.slice(0, frame.size);
      return fail("upstream_auth_refused", `${reply.err.code}: ${reply.err.message}`);
    case "auth-switch":
    case "auth-more-data":
      toClient(conn, bytes.subarray(0, frame.size));
      return NEED_MORE;
    case "old-auth-switch":
      return fail("upstream_auth_unsupported", "the server asked for mysql_old_password");
    case "error":
      return fail("upstream_bad_handshake", reply.reason);
  }
}

/** A client packet while authentication is relayed (a password, a public-key request, a switch answer). */
function clientAuthPacket(conn: Conn, state: MysqlState, bytes: Uint8Array, frame: MessageOf): HandshakeStep {
  if (frame.sequenceId !== state.clientSeq) return fail("malformed_auth_response", `sequence id ${frame.sequenceId}, expected ${state.clientSeq}`);
  state.clientSeq = (frame.lastSequenceId + 1) & 0xff;
  renumberMessage(bytes, 0, frame, (frame.sequenceId - state.seqDelta) & 0xff);
  conn.upstream!.write(bytes.slice(0, frame.size));
  return NEED_MORE;
}

type MessageOf = Extract<ReturnType<typeof frameMessage>, { kind: "message" }>;

/**
 * What a mysql client is told when the proxy ends its connection before a server accepted it: an
 * ERR packet with a SQLSTATE and a message naming the reason, so the client prints why instead of
 * "Lost connection to server during query". A server's own refusal (a wrong password, too many
 * connections) is passed on as the server sent it. Nothing is said before the client's
 * HandshakeResponse41 was read (a client still in its TLS handshake could not read it).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_err_packet.html
 * @module
 */
import type { Conn } from "../proxy/conn.ts";
import { buildErr, ER_ACCESS_DENIED_ERROR, ER_BAD_DB_ERROR, ER_HANDSHAKE_ERROR, ER_NOT_SUPPORTED_AUTH_MODE, ER_UNKNOWN_ERROR } from "./response-packets.ts";
import { toPackets } from "./payload-writer.ts";
import type { MysqlState } from "./state.ts";

/** SQLSTATE class 08: connection exception; "08S01" is MySQL's communication link failure. */
const SERVER_UNREACHABLE = { code: ER_UNKNOWN_ERROR.code, sqlState: "08S01" } as const;

/** Close reasons that say the chosen server could not be reached (src/relay/userspace.ts errorReason, the sweeper). */
const UNREACHABLE = new Set([
  "upstream_refused", "upstream_unreachable", "upstream_timeout", "upstream_error", "upstream_reset", "upstream_no_socket",
  "connect_timeout", "upstream_closed_in_handshake",
]);

export function mysqlFarewell(conn: Conn, reason: string): Uint8Array | null {
  const state = conn.intake?.state as MysqlState | undefined;
  if (!state || state.response === null && conn.facts?.user == null) return null;
  if (state.farewell) return state.farewell;
  return toPackets(buildErr(errorFor(conn, state, reason)), state.clientSeq);
}

function errorFor(conn: Conn, state: MysqlState, reason: string): { code: number; sqlState: string; message: string } {
  const facts = conn.facts!;
  const who = `user "${facts.user}"${facts.database === null ? " (no database)" : ` and database "${facts.database}"`}`;
  if (reason === "no_route") {
    const kind = facts.database === null ? ER_ACCESS_DENIED_ERROR : ER_BAD_DB_ERROR;
    return { ...kind, message: `switchyard: no route for ${who}` };
  }
  if (reason === "auth_switch_unsupported") {
    return { ...ER_NOT_SUPPORTED_AUTH_MODE, message: "switchyard: this client cannot switch authentication plugins (CLIENT_PLUGIN_AUTH), which routing needs" };
  }
  // The server greeted: a timeout now is the authentication's (a client slow to answer), not the dial's.
  if (reason === "connect_timeout" && state.server !== null) {
    return { ...ER_HANDSHAKE_ERROR, message: `switchyard: authentication with server ${conn.upstreamText ?? "(none)"} timed out (${reason})` };
  }
  if (UNREACHABLE.has(reason)) {
    return { ...SERVER_UNREACHABLE, message: `switchyard: server ${conn.upstreamText ?? "(none)"} for ${who} is unreachable (${reason})` };
  }
  if (reason === "upstream_tls_unavailable" || reason === "upstream_tls_failed") {
    const why = reason === "upstream_tls_failed" ? "its TLS handshake failed" : "it does not offer TLS";
    return { ...SERVER_UNREACHABLE, message: `switchyard: server ${conn.upstreamText ?? "(none)"} for ${who} cannot be reached over TLS as its route requires: ${why} (${reason})` };
  }
  if (reason.startsWith("malformed_") || reason.startsWith("upstream_bad")) {
    return { ...ER_HANDSHAKE_ERROR, message: `switchyard: bad handshake (${reason})` };
  }
  return { ...ER_UNKNOWN_ERROR, message: `switchyard: connection refused by the proxy (${reason})` };
}

/**
 * The proxy's own Initial Handshake (protocol 10), sent before any byte is read: the client's
 * HandshakeResponse41 carries the user and database the route is chosen by (issue 16). The real
 * server is not known yet, so the capabilities offered are the conservative set every MySQL 5.5+
 * and MariaDB 5.5+ server also has: whatever the client asks of them, the server it is routed to
 * can grant, and the two sides never disagree about the wire format after authentication.
 * Left out on purpose (they change the format and older servers lack them): CLIENT_COMPRESS,
 * CLIENT_SESSION_TRACK, CLIENT_DEPRECATE_EOF, CLIENT_QUERY_ATTRIBUTES, CLIENT_OPTIONAL_RESULTSET_METADATA,
 * zstd, and MariaDB's extended capabilities (CLIENT_MYSQL is set, so MariaDB clients send none).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_handshake_v10.html
 * Pure: the random bytes are the caller's.
 * @module
 */
import {
  CHARSET_UTF8MB4_GENERAL_CI, CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS, CLIENT_CONNECT_ATTRS, CLIENT_CONNECT_WITH_DB, CLIENT_FOUND_ROWS,
  CLIENT_IGNORE_SIGPIPE, CLIENT_IGNORE_SPACE, CLIENT_INTERACTIVE, CLIENT_LOCAL_FILES, CLIENT_LONG_FLAG, CLIENT_LONG_PASSWORD,
  CLIENT_MULTI_RESULTS, CLIENT_MULTI_STATEMENTS, CLIENT_ODBC, CLIENT_PLUGIN_AUTH, CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
  CLIENT_PROTOCOL_41, CLIENT_PS_MULTI_RESULTS, CLIENT_SECURE_CONNECTION, CLIENT_SSL, CLIENT_TRANSACTIONS, SERVER_STATUS_AUTOCOMMIT,
} from "./capabilities.ts";
import { MYSQL_NATIVE_PASSWORD } from "./auth-packets.ts";
import { buildInitialHandshake, makeScramble } from "./initial-handshake.ts";
import { toPackets } from "./payload-writer.ts";

/** What the proxy offers every client (CLIENT_SSL is added when the listener has a certificate). */
export const PROXY_CAPABILITIES = (CLIENT_LONG_PASSWORD | CLIENT_FOUND_ROWS | CLIENT_LONG_FLAG | CLIENT_CONNECT_WITH_DB | CLIENT_ODBC
  | CLIENT_LOCAL_FILES | CLIENT_IGNORE_SPACE | CLIENT_PROTOCOL_41 | CLIENT_INTERACTIVE | CLIENT_IGNORE_SIGPIPE | CLIENT_TRANSACTIONS
  | CLIENT_SECURE_CONNECTION | CLIENT_MULTI_STATEMENTS | CLIENT_MULTI_RESULTS | CLIENT_PS_MULTI_RESULTS | CLIENT_PLUGIN_AUTH
  | CLIENT_CONNECT_ATTRS | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS) >>> 0;

/**
 * The version the proxy announces. Clients read it for features (a "5.5.5-" prefix would claim
 * MariaDB): a plain MySQL 5.7 version asks nothing of the server behind.
 */
export const PROXY_SERVER_VERSION = "5.7.99-switchyard";

/** The greeting as one packet (sequence id 0), for connection `connectionId`; `random` is 20 random bytes. */
export function proxyGreeting(connectionId: number, random: Uint8Array, offerTls: boolean): Uint8Array {
  const capabilities = (offerTls ? PROXY_CAPABILITIES | CLIENT_SSL : PROXY_CAPABILITIES) >>> 0;
  return toPackets(buildInitialHandshake({
    serverVersion: PROXY_SERVER_VERSION, connectionId: connectionId >>> 0, scramble: makeScramble(random), capabilities,
    mariadbCapabilities: 0, characterSet: CHARSET_UTF8MB4_GENERAL_CI, statusFlags: SERVER_STATUS_AUTOCOMMIT,
    authPluginName: MYSQL_NATIVE_PASSWORD,
  }), 0);
}

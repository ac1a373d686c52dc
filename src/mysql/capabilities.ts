/**
 * Capability and status flags of the MySQL client/server protocol, and the character set the
 * proxy announces. https://dev.mysql.com/doc/dev/mysql-server/latest/group__group__cs__capabilities__flags.html
 * Capabilities are a 32-bit set (kept as unsigned numbers: use `has` and `>>> 0`, since
 * `1 << 31` is negative in JavaScript). MariaDB adds 32 more bits: a MariaDB server that clears
 * CLIENT_LONG_PASSWORD (which it calls CLIENT_MYSQL) sends them in the last 4 of the 10 reserved
 * bytes of its greeting, and a MariaDB client sends its own in the last 4 filler bytes of its
 * HandshakeResponse41 / SSLRequest (https://mariadb.com/kb/en/connection/#capabilities).
 * Pure: no Bun.
 * @module
 */

export const CLIENT_LONG_PASSWORD = 1 << 0; // MariaDB: CLIENT_MYSQL
export const CLIENT_FOUND_ROWS = 1 << 1;
export const CLIENT_LONG_FLAG = 1 << 2;
export const CLIENT_CONNECT_WITH_DB = 1 << 3;
export const CLIENT_NO_SCHEMA = 1 << 4;
export const CLIENT_COMPRESS = 1 << 5;
export const CLIENT_ODBC = 1 << 6;
export const CLIENT_LOCAL_FILES = 1 << 7;
export const CLIENT_IGNORE_SPACE = 1 << 8;
export const CLIENT_PROTOCOL_41 = 1 << 9;
export const CLIENT_INTERACTIVE = 1 << 10;
export const CLIENT_SSL = 1 << 11;
export const CLIENT_IGNORE_SIGPIPE = 1 << 12;
export const CLIENT_TRANSACTIONS = 1 << 13;
export const CLIENT_RESERVED = 1 << 14;
/** Also called CLIENT_RESERVED2: 4.1 authentication (a 20-byte scramble in two parts). */
export const CLIENT_SECURE_CONNECTION = 1 << 15;
export const CLIENT_MULTI_STATEMENTS = 1 << 16;
export const CLIENT_MULTI_RESULTS = 1 << 17;
export const CLIENT_PS_MULTI_RESULTS = 1 << 18;
export const CLIENT_PLUGIN_AUTH = 1 << 19;
export const CLIENT_CONNECT_ATTRS = 1 << 20;
export const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 1 << 21;
export const CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS = 1 << 22;
export const CLIENT_SESSION_TRACK = 1 << 23;
export const CLIENT_DEPRECATE_EOF = 1 << 24;
export const CLIENT_OPTIONAL_RESULTSET_METADATA = 1 << 25;
export const CLIENT_ZSTD_COMPRESSION_ALGORITHM = 1 << 26;
export const CLIENT_QUERY_ATTRIBUTES = 1 << 27;
export const MULTI_FACTOR_AUTHENTICATION = 1 << 28;
export const CLIENT_CAPABILITY_EXTENSION = 1 << 29;
export const CLIENT_SSL_VERIFY_SERVER_CERT = 1 << 30;
export const CLIENT_REMEMBER_OPTIONS = 2 ** 31;

// MariaDB's extended capabilities, as bits of the upper 32-bit word (MARIADB_CLIENT_* >> 32).
export const MARIADB_CLIENT_PROGRESS = 1 << 0;
export const MARIADB_CLIENT_COM_MULTI = 1 << 1;
export const MARIADB_CLIENT_STMT_BULK_OPERATIONS = 1 << 2;
export const MARIADB_CLIENT_EXTENDED_TYPE_INFO = 1 << 3;
export const MARIADB_CLIENT_CACHE_METADATA = 1 << 4;

// https://dev.mysql.com/doc/dev/mysql-server/latest/mysql__com_8h.html (SERVER_STATUS_flags_enum)
export const SERVER_STATUS_IN_TRANS = 1 << 0;
export const SERVER_STATUS_AUTOCOMMIT = 1 << 1;
export const SERVER_SESSION_STATE_CHANGED = 1 << 14;

/** utf8mb4_general_ci (45): understood by every MySQL 5.5+ and MariaDB client. */
export const CHARSET_UTF8MB4_GENERAL_CI = 45;

/** True when `flag` is in the capability set `caps`. */
export function has(caps: number, flag: number): boolean {
  return ((caps & flag) >>> 0) !== 0; // `&` works on the 32-bit pattern, so bit 31 is found too
}

/**
 * The capabilities a proxy sends the server on the client's behalf: only what both sides support
 * (issue 16), as an unsigned 32-bit number.
 */
export function intersect(client: number, server: number): number {
  return (client & server) >>> 0;
}

/**
 * The PostgreSQL startup sniffer: the first message a client sends, before any authentication.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 * Every startup-phase message is Int32 length (itself included), Int32 code, body. A first byte of
 * 0x16 is a TLS record: PostgreSQL 17's direct TLS (sslnegotiation=direct, ALPN "postgresql").
 * Pure: no Bun.
 * @module
 */
import { Cursor, Malformed, NEED_MORE, noMatch, type SniffResult } from "./result.ts";

// https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-SSLREQUEST
export const SSL_REQUEST_CODE = 80877103;
// …#PROTOCOL-MESSAGE-FORMATS-GSSENCREQUEST
export const GSSENC_REQUEST_CODE = 80877104;
// …#PROTOCOL-MESSAGE-FORMATS-CANCELREQUEST
export const CANCEL_REQUEST_CODE = 80877102;
// …#PROTOCOL-MESSAGE-FORMATS-STARTUPMESSAGE: protocol 3.0 is 196608; 3.2 (PostgreSQL 18) is 196610
export const PROTOCOL_3_MAJOR = 3;
/** src/include/libpq/pqcomm.h MAX_STARTUP_PACKET_LENGTH: the server refuses longer startup packets. */
export const MAX_STARTUP_PACKET_LENGTH = 10_000;
/** Protocol 3.2 allows cancel keys up to 256 bytes (PostgreSQL 18); 3.0 uses 4. */
export const MAX_CANCEL_KEY_LENGTH = 256;

export type PgStartup =
  | { readonly kind: "ssl-request"; readonly length: 8 }
  | { readonly kind: "gssenc-request"; readonly length: 8 }
  | { readonly kind: "cancel"; readonly length: number; readonly pid: number; readonly key: Uint8Array }
  | {
    readonly kind: "startup"; readonly length: number; readonly version: number;
    /** `database` defaults to the user name, as the server does. */
    readonly database: string; readonly user: string; readonly params: ReadonlyMap<string, string>;
  };

/**
 * Read the first message. `no-match` reasons: `tls` (a TLS record: direct TLS), `bad_length`,
 * `bad_code`, `no_user`, `truncated_*`, `bad_parameters`.
 */
export function sniffPostgres(bytes: Uint8Array): SniffResult<PgStartup> {
  if (bytes.length > 0 && bytes[0] === 0x16) return noMatch("tls");
  if (bytes.length < 8) return NEED_MORE;
  const c = new Cursor(bytes);
  const length = c.u32("length");
  const code = c.u32("code");
  if (length < 8 || length > MAX_STARTUP_PACKET_LENGTH) return noMatch("bad_length");
  if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
    if (length !== 8) return noMatch("bad_length");
    return { kind: "match", facts: { kind: code === SSL_REQUEST_CODE ? "ssl-request" : "gssenc-request", length: 8 } };
  }
  if (bytes.length < length) return NEED_MORE;
  try {
    if (code === CANCEL_REQUEST_CODE) {
      if (length < 12 + 4 || length > 12 + MAX_CANCEL_KEY_LENGTH) return noMatch("bad_length");
      const pid = c.u32("pid");
      return { kind: "match", facts: { kind: "cancel", length, pid, key: bytes.slice(12, length) } };
    }
    if (code >>> 16 !== PROTOCOL_3_MAJOR) return noMatch("bad_code");
    const params = readParams(new Cursor(bytes, 8, length));
    const user = params.get("user");
    if (!user) return noMatch("no_user"); // the server requires it too
    return { kind: "match", facts: { kind: "startup", length, version: code, database: params.get("database") || user, user, params } };
  } catch (e) {
    if (e instanceof Malformed) return noMatch(e.reason);
    throw e;
  }
}

/** name\0value\0 … \0 */
function readParams(c: Cursor): Map<string, string> {
  const out = new Map<string, string>();
  for (;;) {
    const name = cString(c);
    if (name === "") break;
    out.set(name, cString(c));
  }
  if (c.left !== 0) throw new Malformed("bad_parameters");
  return out;
}

function cString(c: Cursor): string {
  const end = c.bytes.indexOf(0, c.pos);
  if (end < 0 || end >= c.end) throw new Malformed("truncated_parameters");
  const s = new TextDecoder().decode(c.bytes.subarray(c.pos, end));
  c.pos = end + 1;
  return s;
}

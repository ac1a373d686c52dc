/**
 * The packets of the authentication exchange, as a routing proxy meets them: it sends the client
 * an AuthSwitchRequest carrying the chosen server's own plugin and scramble (so the client answers
 * the real server and the proxy stores no password, issue 16), then relays what follows, reading
 * each server packet only to know when authentication is over.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_auth_switch_request.html
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_auth_more_data.html
 *
 * Server packets during authentication, told apart by their first byte:
 *   0x00 OK (done) · 0xFF ERR (refused) · 0xFE AuthSwitchRequest (string<NUL> plugin, string<EOF>
 *   data; a lone 0xFE is the pre-4.1 OldAuthSwitchRequest) · 0x01 AuthMoreData (string<EOF> data:
 *   caching_sha2_password sends 0x03 "fast auth succeeded, OK follows" or 0x04 "send the full
 *   password", or its RSA public key in PEM after a client's 0x02 request).
 * Pure: no Bun.
 * @module
 */
import { guarded, Malformed, PayloadReader } from "./payload-reader.ts";
import { PayloadWriter } from "./payload-writer.ts";
import { ERR_HEADER, OK_HEADER, parseErr, parseOk, type ErrPacket, type OkPacket } from "./response-packets.ts";

export const AUTH_SWITCH_REQUEST = 0xfe;
export const AUTH_MORE_DATA = 0x01;

// caching_sha2_password's one-byte messages.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_caching_sha2_authentication_exchanges.html
/** In AuthMoreData: the fast path matched the cached hash; an OK follows. */
export const CACHING_SHA2_FAST_AUTH_SUCCESS = 0x03;
/** In AuthMoreData: the client must send the whole password (over TLS, or RSA-encrypted). */
export const CACHING_SHA2_PERFORM_FULL_AUTH = 0x04;
/** From the client: "send me your RSA public key" (when not on TLS). */
export const CACHING_SHA2_REQUEST_PUBLIC_KEY = 0x02;

export const MYSQL_NATIVE_PASSWORD = "mysql_native_password";
export const CACHING_SHA2_PASSWORD = "caching_sha2_password";

export type AuthReply =
  | { readonly kind: "ok"; readonly ok: OkPacket }
  | { readonly kind: "err"; readonly err: ErrPacket }
  /** `data` is the plugin's challenge as sent (MySQL and MariaDB send the scramble and a NUL). */
  | { readonly kind: "auth-switch"; readonly pluginName: string; readonly data: Uint8Array }
  /** The 4.0 OldAuthSwitchRequest (switch to mysql_old_password): refused by every current client. */
  | { readonly kind: "old-auth-switch" }
  | { readonly kind: "auth-more-data"; readonly data: Uint8Array }
  /** `unexpected_auth_packet` (another first byte), or a malformed OK/ERR/switch. */
  | { readonly kind: "error"; readonly reason: string };

/** Classify a server packet during authentication; `caps` are the capabilities in force. */
export function parseAuthReply(payload: Uint8Array, caps: number): AuthReply {
  if (payload.length === 0) return { kind: "error", reason: "unexpected_auth_packet" };
  switch (payload[0]) {
    case OK_HEADER:
      return parseOk(payload, caps);
    case ERR_HEADER:
      return parseErr(payload);
    case AUTH_MORE_DATA:
      return { kind: "auth-more-data", data: payload.subarray(1) };
    case AUTH_SWITCH_REQUEST:
      if (payload.length === 1) return { kind: "old-auth-switch" };
      return parseAuthSwitchRequest(payload);
    default:
      return { kind: "error", reason: "unexpected_auth_packet" };
  }
}

export function parseAuthSwitchRequest(payload: Uint8Array): AuthReply {
  return guarded((): AuthReply => {
    const r = new PayloadReader(payload);
    if (r.u8("header") !== AUTH_SWITCH_REQUEST) throw new Malformed("not_auth_switch_request");
    const pluginName = r.nulString("plugin_name");
    if (pluginName === "") throw new Malformed("empty_plugin_name");
    return { kind: "auth-switch", pluginName, data: r.rest() };
  });
}

/**
 * An AuthSwitchRequest payload. For mysql_native_password and caching_sha2_password pass the
 * server's 20-byte scramble: a NUL is appended, as servers send it (clients use the first 20 bytes).
 * Other plugins' data goes as given (`appendNul` false).
 */
export function buildAuthSwitchRequest(pluginName: string, data: Uint8Array, appendNul = true): Uint8Array {
  const w = new PayloadWriter().u8(AUTH_SWITCH_REQUEST).nulString(pluginName).bytes(data);
  if (appendNul) w.u8(0);
  return w.payload();
}

/** An AuthMoreData payload (for fake servers in tests and for relaying a public key). */
export function buildAuthMoreData(data: Uint8Array): Uint8Array {
  return new PayloadWriter().u8(AUTH_MORE_DATA).bytes(data).payload();
}

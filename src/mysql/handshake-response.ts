/**
 * The client's first packet: Protocol::SSLRequest (32 bytes, CLIENT_SSL: start TLS, then the
 * real response follows) or Protocol::HandshakeResponse41, which carries the routing facts: user,
 * database, auth plugin, connection attributes. Parsed from clients, built for the server the
 * proxy routes to.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_handshake_response.html
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_ssl_request.html
 *
 *   int<4> client capabilities · int<4> max packet size · int<1> charset · string[23] filler
 *   (MariaDB: the last 4 bytes are its extended capabilities when CLIENT_MYSQL is clear)
 *   — the SSLRequest ends here —
 *   string<NUL> username · auth response: string<lenenc> with CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
 *   else int<1> length + bytes with CLIENT_SECURE_CONNECTION, else string<NUL> ·
 *   string<NUL> database (CLIENT_CONNECT_WITH_DB) · string<NUL> plugin (CLIENT_PLUGIN_AUTH) ·
 *   int<lenenc> length, then string<lenenc> key/value pairs (CLIENT_CONNECT_ATTRS) ·
 *   int<1> zstd level (CLIENT_ZSTD_COMPRESSION_ALGORITHM)
 *
 * Trailing optional fields may be absent even when their flag is set (old clients; servers read
 * them only while bytes remain): then they are null. Strings are decoded as UTF-8, the character
 * set of every client the proxy targets (utf8mb4 by default). Pure: no Bun.
 * @module
 */
import {
  CLIENT_CONNECT_ATTRS, CLIENT_CONNECT_WITH_DB, CLIENT_LONG_PASSWORD, CLIENT_PLUGIN_AUTH, CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
  CLIENT_PROTOCOL_41, CLIENT_SECURE_CONNECTION, CLIENT_SSL, CLIENT_ZSTD_COMPRESSION_ALGORITHM, has,
} from "./capabilities.ts";
import { guarded, Malformed, PayloadReader } from "./payload-reader.ts";
import { PayloadWriter } from "./payload-writer.ts";

/** The fixed part both packets share; an SSLRequest is exactly this. */
export const SSL_REQUEST_BYTES = 32;

export interface ClientHello {
  /** The 32 standard capability bits, unsigned. */
  readonly capabilities: number;
  /** MariaDB's extended capabilities (the upper 32 bits), 0 when the client sends none. */
  readonly mariadbCapabilities: number;
  readonly maxPacketSize: number;
  readonly characterSet: number;
}

export interface HandshakeResponse41 extends ClientHello {
  readonly user: string;
  /** Computed by the client for the scramble it was given: opaque to the proxy. */
  readonly authResponse: Uint8Array;
  /** null without CLIENT_CONNECT_WITH_DB (or when the client left the field out). */
  readonly database: string | null;
  /** null without CLIENT_PLUGIN_AUTH (or when left out). */
  readonly authPluginName: string | null;
  /** null without CLIENT_CONNECT_ATTRS (or when left out); later duplicates of a key win. */
  readonly attributes: ReadonlyMap<string, string> | null;
  /** With CLIENT_ZSTD_COMPRESSION_ALGORITHM, the level asked for; else null. */
  readonly zstdLevel: number | null;
}

export type ClientHandshakeParse =
  | { readonly kind: "ssl-request"; readonly hello: ClientHello }
  | { readonly kind: "response41"; readonly response: HandshakeResponse41 }
  /**
   * `protocol_320_unsupported` (no CLIENT_PROTOCOL_41: a pre-4.1 client), `bad_attributes`
   * (attribute lengths do not add up), `truncated_<field>`, `bad_lenenc_<field>`, `integer_too_large`.
   */
  | { readonly kind: "error"; readonly reason: string };

/**
 * The variable fields of a HandshakeResponse41 as the client sent them (views into its payload).
 * The parsed strings are UTF-8 decodings; a proxy that rebuilds the response for a server passes
 * these instead, so names in another character set reach the server byte for byte.
 */
export interface RawClientFields {
  readonly user: Uint8Array;
  /** null when the response has no database field. */
  readonly database: Uint8Array | null;
  /** The attribute block's content (the key/value pairs, without its length); null when absent. */
  readonly attributes: Uint8Array | null;
}

/** Parse a client's first (or, after TLS, second) packet payload. */
export function parseClientHandshake(payload: Uint8Array): ClientHandshakeParse {
  return readClientHandshake(payload, null);
}

/** As {@link parseClientHandshake}, and for a HandshakeResponse41 also its fields' bytes as sent. */
export function parseClientHandshakeKeepingBytes(payload: Uint8Array): { readonly parsed: ClientHandshakeParse; readonly raw: RawClientFields | null } {
  const raw: { user: Uint8Array; database: Uint8Array | null; attributes: Uint8Array | null } = { user: EMPTY, database: null, attributes: null };
  const parsed = readClientHandshake(payload, raw);
  return { parsed, raw: parsed.kind === "response41" ? raw : null };
}

const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder();

function readClientHandshake(payload: Uint8Array, raw: { user: Uint8Array; database: Uint8Array | null; attributes: Uint8Array | null } | null): ClientHandshakeParse {
  return guarded((): ClientHandshakeParse => {
    const r = new PayloadReader(payload);
    const capabilities = r.u32("capabilities");
    if (!has(capabilities, CLIENT_PROTOCOL_41)) throw new Malformed("protocol_320_unsupported");
    const maxPacketSize = r.u32("max_packet_size");
    const characterSet = r.u8("character_set");
    const filler = r.fixed(23, "filler");
    const mariadbCapabilities = has(capabilities, CLIENT_LONG_PASSWORD)
      ? 0
      : (filler[19]! | (filler[20]! << 8) | (filler[21]! << 16) | (filler[22]! << 24)) >>> 0;
    const hello: ClientHello = { capabilities, mariadbCapabilities, maxPacketSize, characterSet };
    if (r.left === 0) {
      if (has(capabilities, CLIENT_SSL)) return { kind: "ssl-request", hello };
      throw new Malformed("truncated_username");
    }
    const userBytes = r.nulBytes("username");
    const user = utf8.decode(userBytes);
    if (raw) raw.user = userBytes;
    let authResponse: Uint8Array;
    if (has(capabilities, CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)) authResponse = r.lenencBytes("auth_response");
    else if (has(capabilities, CLIENT_SECURE_CONNECTION)) authResponse = r.fixed(r.u8("auth_response"), "auth_response");
    else authResponse = r.nulBytes("auth_response");
    const databaseBytes = has(capabilities, CLIENT_CONNECT_WITH_DB) && r.left > 0 ? r.nulBytes("database") : null;
    const database = databaseBytes === null ? null : utf8.decode(databaseBytes);
    if (raw) raw.database = databaseBytes;
    const authPluginName = has(capabilities, CLIENT_PLUGIN_AUTH) && r.left > 0 ? r.nulString("auth_plugin_name") : null;
    let attributes: Map<string, string> | null = null;
    if (has(capabilities, CLIENT_CONNECT_ATTRS) && r.left > 0) {
      const length = r.lenencInt("attributes");
      if (length > r.left) throw new Malformed("bad_attributes");
      const a = new PayloadReader(payload, r.pos, r.pos + length);
      if (raw) raw.attributes = payload.subarray(r.pos, r.pos + length);
      attributes = new Map();
      try {
        while (a.left > 0) attributes.set(a.lenencString("attribute"), a.lenencString("attribute"));
      } catch (e) {
        if (e instanceof Malformed) throw new Malformed("bad_attributes");
        throw e;
      }
      r.pos += length;
    }
    const zstdLevel = has(capabilities, CLIENT_ZSTD_COMPRESSION_ALGORITHM) && r.left > 0 ? r.u8("zstd_level") : null;
    return { kind: "response41", response: { ...hello, user, authResponse, database, authPluginName, attributes, zstdLevel } };
  });
}

/** The fixed 32 bytes of both packets. */
function writeHello(w: PayloadWriter, h: ClientHello): PayloadWriter {
  w.u32(h.capabilities >>> 0).u32(h.maxPacketSize).u8(h.characterSet).zeros(19);
  return has(h.capabilities, CLIENT_LONG_PASSWORD) ? w.zeros(4) : w.u32(h.mariadbCapabilities);
}

/** An SSLRequest payload (the proxy asks an upstream server for TLS); `capabilities` must hold CLIENT_SSL. */
export function buildSslRequest(h: ClientHello): Uint8Array {
  if (!has(h.capabilities, CLIENT_SSL)) throw new RangeError("buildSslRequest: capabilities must include CLIENT_SSL");
  return writeHello(new PayloadWriter(), h).payload();
}

/**
 * A HandshakeResponse41 payload, the auth response encoded as `capabilities` say. Fields whose
 * flag is clear are left out; a field whose flag is set must be given (null is written as empty).
 * With `raw`, the user, database and attributes are its bytes, not the strings re-encoded.
 */
export function buildHandshakeResponse41(h: HandshakeResponse41, raw: RawClientFields | null = null): Uint8Array {
  const caps = h.capabilities >>> 0;
  if (!has(caps, CLIENT_PROTOCOL_41)) throw new RangeError("buildHandshakeResponse41: CLIENT_PROTOCOL_41 is required");
  const w = writeHello(new PayloadWriter(), h).nulString(raw ? raw.user : h.user);
  if (has(caps, CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)) w.lenencString(h.authResponse);
  else if (has(caps, CLIENT_SECURE_CONNECTION)) {
    if (h.authResponse.length > 255) throw new RangeError("buildHandshakeResponse41: a 1-byte length holds at most 255 bytes");
    w.u8(h.authResponse.length).bytes(h.authResponse);
  } else w.nulString(h.authResponse);
  if (has(caps, CLIENT_CONNECT_WITH_DB)) w.nulString(raw?.database ?? h.database ?? "");
  if (has(caps, CLIENT_PLUGIN_AUTH)) w.nulString(h.authPluginName ?? "");
  if (has(caps, CLIENT_CONNECT_ATTRS) && raw?.attributes) w.lenencString(raw.attributes);
  else if (has(caps, CLIENT_CONNECT_ATTRS)) {
    const a = new PayloadWriter();
    for (const [k, v] of h.attributes ?? []) a.lenencString(k).lenencString(v);
    w.lenencString(a.payload());
  }
  if (has(caps, CLIENT_ZSTD_COMPRESSION_ALGORITHM)) w.u8(h.zstdLevel ?? 3);
  return w.payload();
}

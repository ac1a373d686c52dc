/**
 * The TLS ClientHello sniffer: bytes in, the hello's facts out. It reassembles a hello split across
 * records (RFC 8446 §5.1 allows a handshake message to span records, and a 1-byte-per-record hello
 * is legal) and across reads (call again with all the bytes collected so far). Malformed input is a
 * `no-match` whose reason names what was wrong, e.g. `truncated_cipher_suites`.
 * Pure: no Bun.
 * @module
 */
import { Cursor, Malformed, NEED_MORE, noMatch, type SniffResult } from "./result.ts";

// https://www.rfc-editor.org/rfc/rfc8446#section-5.1 (ContentType.handshake)
export const RECORD_HANDSHAKE = 22;
// https://www.rfc-editor.org/rfc/rfc8446#section-4 (HandshakeType.client_hello)
export const HANDSHAKE_CLIENT_HELLO = 1;
// https://www.rfc-editor.org/rfc/rfc8446#section-5.1: TLSPlaintext.length MUST NOT exceed 2^14
export const MAX_RECORD_PAYLOAD = 16_384;
export const RECORD_HEADER = 5;
/**
 * The longest ClientHello accepted, counted as the handshake message (4-byte header and body)
 * whatever its framing: what one record could carry. Real hellos are far shorter; the collector's
 * bound on the bytes read follows from this one (src/sniff/collect.ts).
 */
export const MAX_HANDSHAKE_MESSAGE = MAX_RECORD_PAYLOAD;
const HANDSHAKE_HEADER = 4;

// https://www.iana.org/assignments/tls-extensiontype-values
export const EXT_SERVER_NAME = 0;
export const EXT_SUPPORTED_GROUPS = 10;
export const EXT_EC_POINT_FORMATS = 11;
export const EXT_SIGNATURE_ALGORITHMS = 13;
export const EXT_ALPN = 16;
export const EXT_SUPPORTED_VERSIONS = 43;

/** What a ClientHello says, in wire order, GREASE values included (fingerprints drop them). */
export interface ClientHello {
  /** legacy_version of the hello body (0x0303 for TLS 1.2 and 1.3). */
  readonly version: number;
  /** Server name, lower-cased, without a trailing dot; null without the extension. */
  readonly sni: string | null;
  readonly alpn: readonly string[];
  readonly supportedVersions: readonly number[];
  readonly ciphers: readonly number[];
  readonly extensions: readonly number[];
  readonly groups: readonly number[];
  readonly pointFormats: readonly number[];
  readonly signatureAlgorithms: readonly number[];
  /** Bytes of the records that carried the hello (what must be replayed or peeked past). */
  readonly recordBytes: number;
}

/**
 * Parse the ClientHello at the start of `bytes` (everything read from the client so far).
 * `no-match` reasons: `not_tls` (first byte is not a handshake record), `sslv2_hello`, or a
 * malformation (`record_too_long`, `empty_record`, `not_client_hello`, `hello_too_long`,
 * `truncated_*`, `bad_*`, `duplicate_extension`, …).
 */
export function sniffClientHello(bytes: Uint8Array): SniffResult<ClientHello> {
  if (bytes.length === 0) return NEED_MORE;
  if (bytes[0] !== RECORD_HANDSHAKE) return noMatch(bytes[0]! & 0x80 ? "sslv2_hello" : "not_tls");
  // Walk the records without copying until the whole handshake message is there.
  let pos = 0;
  let have = 0; // handshake bytes seen so far
  let need = -1; // handshake message length incl. its 4-byte header, once known
  const header = new Uint8Array(4);
  while (need < 0 || have < need) {
    if (pos + 5 > bytes.length) return NEED_MORE;
    if (bytes[pos] !== RECORD_HANDSHAKE) return noMatch("non_handshake_record");
    if (bytes[pos + 1] !== 3) return noMatch("bad_record_version");
    const len = (bytes[pos + 3]! << 8) | bytes[pos + 4]!;
    if (len > MAX_RECORD_PAYLOAD) return noMatch("record_too_long");
    if (len === 0) return noMatch("empty_record"); // RFC 8446 §5.1: no zero-length handshake fragments
    const start = pos + 5;
    const available = Math.min(len, bytes.length - start);
    for (let i = 0; i < available && have + i < 4; i++) header[have + i] = bytes[start + i]!;
    if (available < len) {
      if (have + available >= 4 && need < 0 && !checkHeader(header)) return noMatch(headerProblem(header));
      if (have + available >= 4 && need < 0) need = 4 + readLength(header);
      return NEED_MORE;
    }
    have += len;
    pos = start + len;
    if (need < 0 && have >= 4) {
      if (!checkHeader(header)) return noMatch(headerProblem(header));
      need = 4 + readLength(header);
    }
  }
  if (have > need) return noMatch("trailing_handshake_data");
  const message = gather(bytes, pos);
  try {
    return { kind: "match", facts: parseBody(new Cursor(message, 4), pos) };
  } catch (e) {
    if (e instanceof Malformed) return noMatch(e.reason);
    throw e;
  }
}

function readLength(h: Uint8Array): number {
  return (h[1]! << 16) | (h[2]! << 8) | h[3]!;
}

function checkHeader(h: Uint8Array): boolean {
  return h[0] === HANDSHAKE_CLIENT_HELLO && HANDSHAKE_HEADER + readLength(h) <= MAX_HANDSHAKE_MESSAGE;
}

function headerProblem(h: Uint8Array): string {
  return h[0] !== HANDSHAKE_CLIENT_HELLO ? "not_client_hello" : "hello_too_long";
}

/** The handshake message: the payloads of the records in bytes[0, end), joined. */
function gather(bytes: Uint8Array, end: number): Uint8Array {
  const first = (bytes[3]! << 8) | bytes[4]!;
  if (5 + first === end) return bytes.subarray(5, end); // one record: no copy
  const out = new Uint8Array(end);
  let n = 0;
  for (let pos = 0; pos < end;) {
    const len = (bytes[pos + 3]! << 8) | bytes[pos + 4]!;
    out.set(bytes.subarray(pos + 5, pos + 5 + len), n);
    n += len;
    pos += 5 + len;
  }
  return out.subarray(0, n);
}

// https://www.rfc-editor.org/rfc/rfc8446#section-4.1.2 (ClientHello)
function parseBody(c: Cursor, recordBytes: number): ClientHello {
  const version = c.u16("version");
  c.take(32, "random");
  const sessionId = c.vector8("session_id");
  if (sessionId.left > 32) throw new Malformed("bad_session_id");
  const suites = c.vector16("cipher_suites");
  if (suites.left === 0) throw new Malformed("bad_cipher_suites");
  const ciphers = suites.u16List("cipher_suites");
  if (c.vector8("compression_methods").left === 0) throw new Malformed("bad_compression_methods");
  let sni: string | null = null;
  let alpn: string[] = [];
  let supportedVersions: number[] = [];
  let groups: number[] = [];
  let pointFormats: number[] = [];
  let signatureAlgorithms: number[] = [];
  const extensions: number[] = [];
  if (c.left > 0) {
    const list = c.vector16("extensions");
    if (c.left > 0) throw new Malformed("trailing_hello_data");
    const seen = new Set<number>();
    while (list.left > 0) {
      const type = list.u16("extension");
      const body = list.vector16("extension");
      if (seen.has(type)) throw new Malformed("duplicate_extension"); // RFC 8446 §4.2
      seen.add(type);
      extensions.push(type);
      switch (type) {
        case EXT_SERVER_NAME: sni = parseServerName(body); break;
        case EXT_ALPN: alpn = parseAlpn(body); break;
        case EXT_SUPPORTED_VERSIONS: supportedVersions = body.vector8("supported_versions").u16List("supported_versions"); break;
        case EXT_SUPPORTED_GROUPS: groups = body.vector16("supported_groups").u16List("supported_groups"); break;
        case EXT_SIGNATURE_ALGORITHMS: signatureAlgorithms = body.vector16("signature_algorithms").u16List("signature_algorithms"); break;
        case EXT_EC_POINT_FORMATS: {
          const f = body.vector8("ec_point_formats");
          while (f.left > 0) pointFormats.push(f.u8("ec_point_formats"));
          break;
        }
      }
    }
  }
  return { version, sni, alpn, supportedVersions, ciphers, extensions, groups, pointFormats, signatureAlgorithms, recordBytes };
}

// https://www.rfc-editor.org/rfc/rfc6066#section-3
function parseServerName(body: Cursor): string | null {
  const list = body.vector16("server_name");
  let name: string | null = null;
  while (list.left > 0) {
    const type = list.u8("server_name");
    const value = list.vector16("server_name");
    if (type !== 0 || name !== null) continue; // host_name is the only type; one per type
    if (value.left === 0 || value.left > 255) throw new Malformed("bad_server_name");
    let text = "";
    for (let i = value.pos; i < value.end; i++) {
      const ch = value.bytes[i]!;
      // Printable ASCII without space: a NUL or a slash in a name must not reach a route matcher or a log line.
      if (ch <= 0x20 || ch >= 0x7f || ch === 0x2f) throw new Malformed("bad_server_name");
      text += String.fromCharCode(ch >= 0x41 && ch <= 0x5a ? ch + 32 : ch);
    }
    name = text.endsWith(".") ? text.slice(0, -1) : text;
  }
  return name;
}

// https://www.rfc-editor.org/rfc/rfc7301#section-3.1
function parseAlpn(body: Cursor): string[] {
  const list = body.vector16("alpn");
  const out: string[] = [];
  while (list.left > 0) {
    const p = list.vector8("alpn");
    if (p.left === 0) throw new Malformed("bad_alpn");
    out.push(String.fromCharCode(...p.bytes.subarray(p.pos, p.end)));
  }
  return out;
}

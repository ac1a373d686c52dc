/**
 * The grammar of the field values framing and routing depend on: Content-Length, Transfer-Encoding,
 * Connection and Host. Each reads a value range already cut by the field-line scanner and answers with
 * a number (a length, a set of bits) or a reason code (negative). Pure, no allocation.
 * @module
 */
import { BACKSLASH, COLON, COMMA, DQUOTE, EQUALS, HOST, HTAB, LOWER, QDTEXT, QUOTED_PAIR, SEMICOLON, SP, TOKEN, equalsLower } from "./chars.ts";
import { E } from "./reasons.ts";

/** Lengths above this are refused (RFC 9110 §8.6 allows any; a JS number is exact up to 2^53-1). */
export const MAX_LENGTH = Number.MAX_SAFE_INTEGER;

function skipOws(bytes: Uint8Array, p: number, e: number): number {
  while (p < e && (bytes[p] === SP || bytes[p] === HTAB)) p++;
  return p;
}

/**
 * Content-Length = 1*DIGIT (RFC 9110 §8.6). A comma-separated list of one repeated value (what an
 * upstream processor that combined duplicate fields makes) is accepted as that value, as the RFC allows;
 * the caller writes it back once. Returns the length or `invalid_content_length`,
 * `content_length_overflow`, `conflicting_content_length`.
 */
export function parseContentLength(bytes: Uint8Array, s: number, e: number): number {
  let value = -1;
  let p = s;
  for (;;) {
    const digits = p;
    let v = 0;
    while (p < e) {
      const d = bytes[p]! - 0x30;
      if (d < 0 || d > 9) break;
      v = v * 10 + d;
      if (v > MAX_LENGTH) return E.content_length_overflow;
      p++;
    }
    if (p === digits) return E.invalid_content_length;
    if (value >= 0 && v !== value) return E.conflicting_content_length;
    value = v;
    p = skipOws(bytes, p, e);
    if (p === e) return value;
    if (bytes[p] !== COMMA) return E.invalid_content_length;
    p = skipOws(bytes, p + 1, e);
  }
}

/** True when bytes `s..e` are digits only: a Content-Length that can be forwarded as it is. */
export function isPlainDigits(bytes: Uint8Array, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (bytes[i]! < 0x30 || bytes[i]! > 0x39) return false;
  return e > s;
}

/** Transfer-Encoding state carried across its field lines (a list split over lines is one list). */
export const TE_ANY = 1; // at least one coding
export const TE_CHUNKED = 2; // chunked appeared
export const TE_LAST_CHUNKED = 4; // the last coding so far is chunked
export const TE_FIELD = 8; // a Transfer-Encoding field line was seen (even one with no coding)
export const TE_OTHER = 16; // a coding other than chunked appeared (a request with one is refused: parse-head.ts)

// RFC 9112 §7 and the IANA HTTP Transfer Coding registry: the codings a recipient can name. We never
// decode them (the body is relayed as received), but "not understood" (501) is about the name.
const KNOWN_CODINGS = ["chunked", "gzip", "deflate", "compress", "x-gzip", "x-compress"];

function isKnownCoding(bytes: Uint8Array, s: number, e: number): boolean {
  for (let i = 0; i < KNOWN_CODINGS.length; i++) if (equalsLower(bytes, s, e, KNOWN_CODINGS[i]!)) return true;
  return false;
}

/** Index after a quoted-string starting at `p` (its opening DQUOTE), or -1 (RFC 9110 §5.6.4). */
export function skipQuotedString(bytes: Uint8Array, p: number, e: number): number {
  p++;
  while (p < e) {
    const c = bytes[p]!;
    if (c === DQUOTE) return p + 1;
    if (c === BACKSLASH) {
      if (p + 1 >= e || QUOTED_PAIR[bytes[p + 1]!] !== 1) return -1;
      p += 2;
    } else if (QDTEXT[c] === 1) p++;
    else return -1;
  }
  return -1;
}

/**
 * One Transfer-Encoding value (RFC 9112 §6.1, §7): `#( token *( OWS ";" OWS token BWS "=" BWS
 * ( token / quoted-string ) ) )`, folded into `state`. Returns the new state or
 * `invalid_transfer_encoding` (syntax, or parameters on chunked: it defines none), `chunked_twice`, and,
 * when `refuseUnknown` (a request: RFC 9112 §6.1 SHOULD 501), `unknown_transfer_coding`.
 */
export function scanTransferEncoding(bytes: Uint8Array, s: number, e: number, state: number, refuseUnknown: boolean): number {
  state |= TE_FIELD;
  let p = s;
  while (p < e) {
    if (bytes[p] === COMMA) { p = skipOws(bytes, p + 1, e); continue; } // empty list elements are allowed (RFC 9110 §5.6.1)
    const name = p;
    while (p < e && TOKEN[bytes[p]!] === 1) p++;
    if (p === name) return E.invalid_transfer_encoding;
    const chunked = equalsLower(bytes, name, p, "chunked");
    if (chunked) {
      if ((state & TE_CHUNKED) !== 0) return E.chunked_twice;
      state |= TE_CHUNKED | TE_LAST_CHUNKED;
    } else {
      if (refuseUnknown && !isKnownCoding(bytes, name, p)) return E.unknown_transfer_coding;
      state = (state & ~TE_LAST_CHUNKED) | TE_OTHER;
    }
    state |= TE_ANY;
    p = skipOws(bytes, p, e);
    while (p < e && bytes[p] === SEMICOLON) {
      if (chunked) return E.invalid_transfer_encoding;
      p = skipOws(bytes, p + 1, e);
      const param = p;
      while (p < e && TOKEN[bytes[p]!] === 1) p++;
      if (p === param) return E.invalid_transfer_encoding;
      p = skipOws(bytes, p, e);
      if (p === e || bytes[p] !== EQUALS) return E.invalid_transfer_encoding;
      p = skipOws(bytes, p + 1, e);
      if (p < e && bytes[p] === DQUOTE) {
        p = skipQuotedString(bytes, p, e);
        if (p < 0) return E.invalid_transfer_encoding;
      } else {
        const v = p;
        while (p < e && TOKEN[bytes[p]!] === 1) p++;
        if (p === v) return E.invalid_transfer_encoding;
      }
      p = skipOws(bytes, p, e);
    }
    if (p === e) break;
    if (bytes[p] !== COMMA) return E.invalid_transfer_encoding;
  }
  return state;
}

/** Connection options (RFC 9110 §7.6.1) the framing layer acts on. */
export const CONN_CLOSE = 1;
export const CONN_KEEP_ALIVE = 2;
export const CONN_UPGRADE = 4;
/** Some option names another field, which is then hop-by-hop too. */
export const CONN_OTHER = 8;

/**
 * One Connection value: `#connection-option` (tokens, case-insensitive). Returns the option bits or
 * `invalid_connection`: a proxy that cannot read Connection cannot know which fields to remove.
 */
export function scanConnection(bytes: Uint8Array, s: number, e: number): number {
  let bits = 0;
  let p = s;
  while (p < e) {
    if (bytes[p] === COMMA) { p = skipOws(bytes, p + 1, e); continue; }
    const t = p;
    while (p < e && TOKEN[bytes[p]!] === 1) p++;
    if (p === t) return E.invalid_connection;
    if (equalsLower(bytes, t, p, "close")) bits |= CONN_CLOSE;
    else if (equalsLower(bytes, t, p, "keep-alive")) bits |= CONN_KEEP_ALIVE;
    else if (equalsLower(bytes, t, p, "upgrade")) bits |= CONN_UPGRADE;
    else bits |= CONN_OTHER;
    p = skipOws(bytes, p, e);
    if (p < e && bytes[p] !== COMMA) return E.invalid_connection;
  }
  return bits;
}

/**
 * Host = uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2): a reg-name or IPv4 address, or an
 * IP-literal in brackets, then an optional port of digits. Empty is valid (a target with no authority).
 */
export function isValidHost(bytes: Uint8Array, s: number, e: number): boolean {
  let p = s;
  if (p < e && bytes[p] === 0x5b) { // "[" IP-literal "]"
    p++;
    while (p < e && bytes[p] !== 0x5d) {
      const c = LOWER[bytes[p]!]!;
      if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || c === COLON || c === 0x2e)) return false;
      p++;
    }
    if (p === e) return false;
    p++;
  } else {
    while (p < e && bytes[p] !== COLON) {
      const c = bytes[p]!;
      if (HOST[c] !== 1 || c === 0x5b || c === 0x5d) return false;
      p++;
    }
  }
  if (p === e) return true;
  if (bytes[p] !== COLON) return false;
  for (p++; p < e; p++) if (bytes[p]! < 0x30 || bytes[p]! > 0x39) return false;
  return true;
}

/**
 * Byte classes of HTTP/1.1 message syntax as lookup tables (one array read per byte on the hot path,
 * no regex), and the latin1 decoding of a byte range. Pure.
 * @module
 */

export const CR = 0x0d;
export const LF = 0x0a;
export const SP = 0x20;
export const HTAB = 0x09;
export const COLON = 0x3a;
export const COMMA = 0x2c;
export const SEMICOLON = 0x3b;
export const DQUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const EQUALS = 0x3d;

function table(accept: (b: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) t[b] = accept(b) ? 1 : 0;
  return t;
}

const isAlpha = (b: number) => (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const inSet = (chars: string) => (b: number) => chars.includes(String.fromCharCode(b));

/** tchar (RFC 9110 §5.6.2): the bytes of a token (method, field name, coding, connection option). */
export const TOKEN = table((b) => isAlpha(b) || isDigit(b) || inSet("!#$%&'*+-.^_`|~")(b));

/**
 * field-vchar, SP and HTAB (RFC 9110 §5.5): what a field value may hold. obs-text (0x80-0xFF) is
 * allowed and opaque; every CTL but HTAB, and DEL, is refused (NUL, CR and LF MUST be, the others MAY).
 */
export const FIELD_VALUE = table((b) => b === SP || b === HTAB || (b >= 0x21 && b !== 0x7f));

/**
 * The bytes of a request-target (RFC 9112 §3.2): visible ASCII only. Stricter than "any non-space" (no
 * CTL, no DEL, no raw 8-bit: clients percent-encode those, RFC 3986 §2.1) and looser than RFC 3986
 * (browsers send `|`, `^`, `{`, `}` unencoded in queries). No "#": a fragment is not part of a
 * request-target (RFC 9112 §3.2, RFC 3986 §3.5; HAProxy refuses it too).
 */
export const TARGET = table((b) => b >= 0x21 && b <= 0x7e && b !== 0x23);

/** reason-phrase (RFC 9112 §4): HTAB, SP, VCHAR, obs-text. */
export const REASON = table((b) => b === HTAB || b === SP || (b >= 0x21 && b !== 0x7f));

/** qdtext (RFC 9110 §5.6.4): inside a quoted-string, not `"` or `\`. */
export const QDTEXT = table((b) => b === HTAB || b === SP || b === 0x21 || (b >= 0x23 && b <= 0x5b) || (b >= 0x5d && b !== 0x7f));

/** What may follow `\` in a quoted-pair (RFC 9110 §5.6.4). */
export const QUOTED_PAIR = table((b) => b === HTAB || b === SP || (b >= 0x21 && b !== 0x7f));

/** HEXDIG value plus one, 0 for a non-hex byte (RFC 5234 HEXDIG; case-insensitive per RFC 9112 §7.1). */
export const HEX_VALUE = (() => {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) {
    if (isDigit(b)) t[b] = b - 0x30 + 1;
    else if (b >= 0x61 && b <= 0x66) t[b] = b - 0x61 + 11;
    else if (b >= 0x41 && b <= 0x46) t[b] = b - 0x41 + 11;
  }
  return t;
})();

/** ASCII lower-case of each byte (other bytes map to themselves). */
export const LOWER = (() => {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) t[b] = b >= 0x41 && b <= 0x5a ? b + 0x20 : b;
  return t;
})();

/**
 * The bytes of a uri-host and port (RFC 3986 §3.2.2: reg-name = unreserved / pct-encoded / sub-delims,
 * IP-literal in brackets, IPv4 digits and dots), so a Host value cannot smuggle `/`, `@`, `?` or space
 * into routing.
 */
export const HOST = table((b) => isAlpha(b) || isDigit(b) || inSet("-._~%!$&'()*+,;=:[]")(b));

export function isWhitespace(b: number): boolean {
  return b === SP || b === HTAB;
}

/**
 * The bytes `s..e` as a string, one char per byte (latin1). Field values are opaque octets (RFC 9110
 * §5.5); one char per byte keeps the decoding lossless and costs no TextDecoder.
 */
export function latin1(bytes: Uint8Array, s: number, e: number): string {
  // Measured on Bun 1.4.5: appending char by char beats fromCharCode.apply(subarray) and a
  // TextDecoder up to at least 35 chars (hosts and paths); apply wins for long values.
  if (e - s <= 64) {
    let out = "";
    for (let i = s; i < e; i++) out += String.fromCharCode(bytes[i]!);
    return out;
  }
  let out = "";
  // fromCharCode takes the bytes as arguments: a few KB at a time stays far below engine limits.
  for (let i = s; i < e; i += 4096) {
    out += String.fromCharCode.apply(null, bytes.subarray(i, Math.min(e, i + 4096)) as unknown as number[]);
  }
  return out;
}

/** True when bytes `s..e` equal the lower-case ASCII `name`, ignoring case. */
export function equalsLower(bytes: Uint8Array, s: number, e: number, name: string): boolean {
  if (e - s !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (LOWER[bytes[s + i]!] !== name.charCodeAt(i)) return false;
  return true;
}

/** True when bytes `s..e` equal the ASCII string `name` in any case. */
export function equalsIgnoringCase(bytes: Uint8Array, s: number, e: number, name: string): boolean {
  if (e - s !== name.length) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 0xff || LOWER[bytes[s + i]!] !== LOWER[c]) return false;
  }
  return true;
}

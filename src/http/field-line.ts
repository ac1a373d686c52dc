/**
 * One field line (RFC 9112 §5): `field-name ":" OWS field-value OWS CRLF`, scanned byte by byte in
 * order, shared by the head parsers and the chunked trailer section. Every decision depends only on
 * bytes already seen, so a line cut anywhere gives `INCOMPLETE` or the same answer as the whole line.
 * The caller has already handled a line that starts with CR (the end of the section) or whitespace
 * (obs-fold). Pure, no allocation.
 * @module
 */
import { COLON, CR, FIELD_VALUE, HTAB, LF, SP, TOKEN } from "./chars.ts";
import { E, INCOMPLETE } from "./reasons.ts";

/**
 * Scan the field line starting at `s`, reading no byte at or past `end`. On success writes name start,
 * name end, value start and value end (OWS trimmed) at `out[slot..slot+3]` and returns the index after
 * the line's LF; otherwise `INCOMPLETE` or a reason code (negative).
 *
 * `spaceBeforeColon`: a request MUST be refused for it, a proxy MUST remove it from a response
 * (RFC 9112 §5.1); when allowed, the name ends before the whitespace and the caller sees
 * `bytes[nameEnd] !== ":"`.
 */
export function scanFieldLine(
  bytes: Uint8Array, s: number, end: number, out: Int32Array, slot: number, spaceBeforeColon: boolean,
): number {
  let p = s;
  while (p < end && TOKEN[bytes[p]!] === 1) p++;
  if (p === end) return INCOMPLETE;
  const nameEnd = p;
  let c = bytes[p]!;
  if (c !== COLON) {
    if (p === s) return c === LF ? E.bare_lf : E.invalid_header_name;
    if (c === CR || c === LF) return E.missing_colon;
    if (c !== SP && c !== HTAB) return E.invalid_header_name;
    while (p < end && (bytes[p] === SP || bytes[p] === HTAB)) p++;
    if (p === end) return INCOMPLETE;
    if (bytes[p] !== COLON) return E.invalid_header_name;
    if (!spaceBeforeColon) return E.whitespace_before_colon;
  } else if (p === s) {
    return E.invalid_header_name; // an empty name
  }
  p++; // the colon
  while (p < end && (bytes[p] === SP || bytes[p] === HTAB)) p++;
  const valueStart = p;
  while (p < end && FIELD_VALUE[bytes[p]!] === 1) p++;
  if (p === end) return INCOMPLETE;
  c = bytes[p]!;
  if (c === LF) return E.bare_lf;
  if (c !== CR) return E.invalid_header_value; // NUL, a CTL other than HTAB, DEL (RFC 9110 §5.5)
  if (p + 1 === end) return INCOMPLETE;
  if (bytes[p + 1] !== LF) return E.bare_cr; // RFC 9112 §2.2: a bare CR is invalid
  let valueEnd = p;
  while (valueEnd > valueStart && (bytes[valueEnd - 1] === SP || bytes[valueEnd - 1] === HTAB)) valueEnd--;
  out[slot] = s;
  out[slot + 1] = nameEnd;
  out[slot + 2] = valueStart;
  out[slot + 3] = valueEnd;
  return p + 2;
}

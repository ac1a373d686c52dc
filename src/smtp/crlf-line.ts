/**
 * One CRLF-terminated line at the front of some bytes: the scan that both the command framer and
 * the reply parser build on. RFC 5321 §2.3.8: only the sequence CR LF ends a line; a CR or LF
 * alone is not a line end, and a receiver that treated it as one would see different commands
 * than the next hop does (the root of SMTP smuggling, CVE-2023-51764 class). So a bare CR or LF
 * is reported, never taken as a line end. Pure: no Bun, no allocation.
 * @module
 */

export const CR = 0x0d;
export const LF = 0x0a;

export type LineScan =
  /** `bytes[start, end)` is the line without its CRLF; `next` is the offset just after the CRLF. */
  | { readonly kind: "line"; readonly end: number; readonly next: number }
  /** No line end yet, and the line still fits in the limit. */
  | { readonly kind: "need-more" }
  /** `limit` bytes hold no CRLF: the line (CRLF included) would be longer than `limit`. */
  | { readonly kind: "too-long" }
  /** A CR not followed by LF (`at` is the CR), or an LF not preceded by CR (`at` is the LF). */
  | { readonly kind: "bare-cr"; readonly at: number }
  | { readonly kind: "bare-lf"; readonly at: number };

const NEED_MORE = { kind: "need-more" } as const;
const TOO_LONG = { kind: "too-long" } as const;

/**
 * Scan the line starting at `start`. `limit` counts the CRLF (RFC 5321 §4.5.3.1.4 gives 512 for a
 * command line, §4.5.3.1.5 512 for a reply line). Reads at most `limit` bytes.
 */
export function scanLine(bytes: Uint8Array, start: number, limit: number): LineScan {
  const stop = Math.min(bytes.length, start + limit);
  for (let p = start; p < stop; p++) {
    const b = bytes[p]!;
    if (b === LF) return { kind: "bare-lf", at: p };
    if (b !== CR) continue;
    // A CR whose LF would pass the limit makes the line too long whatever follows it: deciding
    // before looking at the next byte gives the same answer however the bytes were split.
    if (p + 2 - start > limit) return TOO_LONG;
    if (p + 1 >= bytes.length) return NEED_MORE;
    if (bytes[p + 1] !== LF) return { kind: "bare-cr", at: p };
    return { kind: "line", end: p, next: p + 2 };
  }
  return stop - start >= limit ? TOO_LONG : NEED_MORE;
}

/**
 * Where the next CRLF ends (the offset after its LF), searching from `from`; -1 when there is none
 * in `bytes` yet. Only a CR LF pair counts. Uses the native indexOf so skipping a long line costs
 * a memchr, not a JavaScript loop.
 */
export function endOfNextCrlf(bytes: Uint8Array, from: number): number {
  for (let lf = bytes.indexOf(LF, from); lf >= 0; lf = bytes.indexOf(LF, lf + 1)) {
    if (lf > from && bytes[lf - 1] === CR) return lf + 1;
  }
  return -1;
}

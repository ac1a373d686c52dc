/**
 * The chunked transfer coding (RFC 9112 §7.1), framed incrementally so a proxy can forward a body as it
 * arrives and never hold it whole:
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext    = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 *
 * Each `feed` reports how many bytes from `start` it has validated: whole size lines, chunk data as it
 * comes (data needs no look-ahead), the CRLF after the data, whole trailer lines. Those bytes may be
 * forwarded; the rest (an unfinished line, at most `maxLineBytes`) must be given again, with more bytes
 * after it. A line is judged only once it is whole, so the answer does not depend on how the stream was
 * cut. One framer per body in flight: its state is a few numbers, nothing is allocated per chunk.
 * Pure.
 * @module
 */
import { CR, HTAB, HEX_VALUE, LF, SEMICOLON, SP, TOKEN, EQUALS, DQUOTE } from "./chars.ts";
import { scanFieldLine } from "./field-line.ts";
import { MAX_LENGTH, skipQuotedString } from "./field-values.ts";
import { type HeadReason, reasonOf } from "./reasons.ts";

export interface ChunkedLimits {
  /**
   * Most bytes of one chunk-size line, extensions and CRLF included. Extensions carry nothing we use;
   * unbounded ones are a known way to make a proxy buffer without end (CVE-2024-22019 in Node.js).
   */
  readonly maxLineBytes: number;
  /** Most bytes of the trailer section, its final CRLF included. */
  readonly maxTrailerBytes: number;
  /** Most trailer field lines. */
  readonly maxTrailers: number;
}

export const DEFAULT_CHUNKED_LIMITS: ChunkedLimits = { maxLineBytes: 4096, maxTrailerBytes: 16384, maxTrailers: 64 };

/** Why a chunked body is refused; trailer lines are refused for the same reasons as field lines in a head. */
export type ChunkedReason =
  | "invalid_chunk_size" // not 1*HEXDIG
  | "chunk_size_overflow" // more than 2^53-1 (a JS number is exact up to there; 64 bits would not fit anyway)
  | "invalid_chunk_extension"
  | "bare_cr_in_chunk" // a CR inside a size line (RFC 9112 §2.2)
  | "bare_lf_in_chunk" // a line ended by LF alone
  | "missing_crlf_after_chunk_data"
  | "chunk_line_too_long"
  | "trailers_too_large"
  | "too_many_trailers"
  | HeadReason;

export type ChunkedResult =
  /** `consumed` bytes from `start` are validated; give the rest again with more after it. */
  | { readonly kind: "need-more"; readonly consumed: number }
  /** The body ends `consumed` bytes after `start`; what follows is the next message. */
  | { readonly kind: "done"; readonly consumed: number }
  | { readonly kind: "error"; readonly reason: ChunkedReason };

const SIZE_LINE = 0, DATA = 1, DATA_CRLF = 2, TRAILER_LINE = 3, DONE = 4, FAILED = 5;

export class ChunkedFramer {
  private state = SIZE_LINE;
  /** Bytes of the current chunk's data still to come. */
  private remaining = 0;
  private trailerBytes = 0;
  private trailerCount = 0;
  private failure: ChunkedResult | null = null;
  /** Chunk-data bytes seen so far (the decoded body length, for logs). */
  dataBytes = 0;
  private readonly scratch = new Int32Array(4);

  constructor(readonly limits: ChunkedLimits = DEFAULT_CHUNKED_LIMITS) {}

  /** Start a new body. */
  reset(): void {
    this.state = SIZE_LINE;
    this.remaining = this.trailerBytes = this.trailerCount = this.dataBytes = 0;
    this.failure = null;
  }

  /** Validate `bytes[start..end)`, the next bytes of the body (after what earlier calls consumed). */
  feed(bytes: Uint8Array, start = 0, end = bytes.length): ChunkedResult {
    let p = start;
    for (;;) {
      switch (this.state) {
        case SIZE_LINE: {
          const lf = findLf(bytes, p, end, this.limits.maxLineBytes);
          if (lf < 0) {
            if (end - p >= this.limits.maxLineBytes) return this.fail("chunk_line_too_long");
            return { kind: "need-more", consumed: p - start };
          }
          const size = chunkSize(bytes, p, lf);
          if (typeof size === "string") return this.fail(size);
          p = lf + 1;
          if (size === 0) this.state = TRAILER_LINE;
          else { this.remaining = size; this.state = DATA; }
          break;
        }
        case DATA: {
          const n = Math.min(this.remaining, end - p);
          p += n;
          this.remaining -= n;
          this.dataBytes += n;
          if (this.remaining > 0) return { kind: "need-more", consumed: p - start };
          this.state = DATA_CRLF;
          break;
        }
        case DATA_CRLF: {
          if (p >= end) return { kind: "need-more", consumed: p - start };
          const c = bytes[p];
          if (c === LF) return this.fail("bare_lf_in_chunk");
          if (c !== CR) return this.fail("missing_crlf_after_chunk_data");
          if (p + 1 >= end) return { kind: "need-more", consumed: p - start };
          if (bytes[p + 1] !== LF) return this.fail("missing_crlf_after_chunk_data");
          p += 2;
          this.state = SIZE_LINE;
          break;
        }
        case TRAILER_LINE: {
          const budget = this.limits.maxTrailerBytes - this.trailerBytes;
          const lf = findLf(bytes, p, end, budget);
          if (lf < 0) {
            if (end - p >= budget) return this.fail("trailers_too_large");
            return { kind: "need-more", consumed: p - start };
          }
          this.trailerBytes += lf + 1 - p;
          const c = bytes[p];
          if (c === CR && lf === p + 1) {
            this.state = DONE;
            return { kind: "done", consumed: lf + 1 - start };
          }
          // A line that starts with whitespace is obs-fold (RFC 9112 §5.2); the rest are field lines.
          if (lf === p || bytes[lf - 1] !== CR) return this.fail("bare_lf_in_chunk");
          if (c === SP || c === HTAB) return this.fail("obs_fold");
          if (++this.trailerCount > this.limits.maxTrailers) return this.fail("too_many_trailers");
          // The line is whole (LF found, CR before it), so the scanner cannot answer INCOMPLETE.
          const r = scanFieldLine(bytes, p, lf + 1, this.scratch, 0, false);
          if (r < 0) return this.fail(reasonOf(r));
          p = lf + 1;
          break;
        }
        case DONE:
          return { kind: "done", consumed: 0 };
        default:
          return this.failure!;
      }
    }
  }

  private fail(reason: ChunkedReason): ChunkedResult {
    this.state = FAILED;
    return (this.failure = { kind: "error", reason });
  }
}

/** Index of the first LF in `bytes[p..min(end, p + max))`, or -1. Lines are short: a loop beats indexOf. */
function findLf(bytes: Uint8Array, p: number, end: number, max: number): number {
  const stop = Math.min(end, p + max);
  for (let i = p; i < stop; i++) if (bytes[i] === LF) return i;
  return -1;
}

/**
 * The chunk-size line `bytes[p..lf]` (LF included): its size, or why it is refused. Checked whole:
 * CRLF ending, no other CR, 1*HEXDIG, then chunk-ext, whose names and values must be tokens or
 * quoted-strings (RFC 9112 §7.1.1); we ignore their meaning.
 */
function chunkSize(bytes: Uint8Array, p: number, lf: number): number | ChunkedReason {
  if (lf === p || bytes[lf - 1] !== CR) return "bare_lf_in_chunk";
  const cr = lf - 1;
  for (let i = p; i < cr; i++) if (bytes[i] === CR) return "bare_cr_in_chunk";
  let size = 0;
  let q = p;
  while (q < cr) {
    const h = HEX_VALUE[bytes[q]!]!;
    if (h === 0) break;
    size = size * 16 + (h - 1);
    if (size > MAX_LENGTH) return "chunk_size_overflow";
    q++;
  }
  if (q === p) return "invalid_chunk_size";
  let afterDigits = true;
  while (q < cr) {
    q = skipBws(bytes, q, cr);
    // Right after the digits only BWS ";" may follow ("1a " and "1g" are bad sizes); after an
    // extension, anything else is a bad extension.
    if (q === cr || bytes[q] !== SEMICOLON) return afterDigits ? "invalid_chunk_size" : "invalid_chunk_extension";
    afterDigits = false;
    q = skipBws(bytes, q + 1, cr);
    const name = q;
    while (q < cr && TOKEN[bytes[q]!] === 1) q++;
    if (q === name) return "invalid_chunk_extension";
    q = skipBws(bytes, q, cr);
    if (q < cr && bytes[q] === EQUALS) {
      q = skipBws(bytes, q + 1, cr);
      if (q < cr && bytes[q] === DQUOTE) {
        q = skipQuotedString(bytes, q, cr);
        if (q < 0) return "invalid_chunk_extension";
      } else {
        const v = q;
        while (q < cr && TOKEN[bytes[q]!] === 1) q++;
        if (q === v) return "invalid_chunk_extension";
      }
    }
  }
  return size;
}

function skipBws(bytes: Uint8Array, q: number, e: number): number {
  while (q < e && (bytes[q] === SP || bytes[q] === HTAB)) q++;
  return q;
}

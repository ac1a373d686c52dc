/**
 * The SMTP command framer: which bytes at the front of the client's stream make the next command
 * line. One call returns one line, so a chunk holding several pipelined commands (RFC 2920) is
 * answered one command at a time, in order; the caller consumes `size` bytes and calls again.
 *
 * An over-long line (RFC 5321 §4.5.3.1.4: 512 bytes with the CRLF, unless the caller allows more)
 * must not desynchronise the session: the rest of that line is not a command. The framer skips up
 * to and including the CRLF that ends it, handing back `skip` results while the line goes on (the
 * caller drops those bytes, so it never holds more than the limit) and one `error` with
 * `line_too_long` when the CRLF arrives; the session answers 500 then and goes on with the next
 * line. That is the only state the framer keeps.
 *
 * A bare CR or LF inside a command (RFC 5321 §2.3.8) is an `error` whose `size` runs through the
 * offending byte. Which line end a sender that emits bare LFs meant is unknowable, so the session
 * answers and closes rather than guess where the next command begins (SMTP_ERRORS says so).
 *
 * Pure: no Bun, no allocation per call beyond the small result object.
 * @module
 */
import { endOfNextCrlf, CR, scanLine } from "./crlf-line.ts";

/** RFC 5321 §4.5.3.1.4: the maximum total length of a command line including the verb and CRLF. */
export const MAX_COMMAND_LINE_BYTES = 512;

export type CommandFrame =
  /** Not a whole line yet: wait for more bytes (the caller holds fewer than `limit` bytes). */
  | { readonly kind: "need-more" }
  /** A command line `bytes[start, end)` (CRLF excluded); consume `size` bytes (CRLF included). */
  | { readonly kind: "line"; readonly start: number; readonly end: number; readonly size: number }
  /** Part of an over-long line: consume `size` bytes and answer nothing yet. */
  | { readonly kind: "skip"; readonly size: number }
  /**
   * Consume `size` bytes and answer the reason (SMTP_ERRORS). For `line_too_long`, `size` runs
   * through the CRLF that ended the line; for `bare_cr`/`bare_lf` through the offending byte.
   */
  | { readonly kind: "error"; readonly reason: "line_too_long" | "bare_cr" | "bare_lf"; readonly size: number };

const NEED_MORE = { kind: "need-more" } as const;

export class CommandFramer {
  /** True while the rest of an over-long line is being skipped. */
  #skipping = false;

  constructor(
    /** Longest accepted line, CRLF included; RFC 5321 §4.5.3.1.4 gives 512 as the minimum to accept. */
    readonly limit = MAX_COMMAND_LINE_BYTES,
  ) {
    if (!Number.isInteger(limit) || limit < 3) throw new RangeError("CommandFramer: limit must be an integer of at least 3");
  }

  /** True while the framer is skipping an over-long line (the caller answers nothing meanwhile). */
  get skipping(): boolean {
    return this.#skipping;
  }

  /** The next unit at `bytes[start…]`. */
  next(bytes: Uint8Array, start = 0): CommandFrame {
    if (this.#skipping) return this.#skip(bytes, start);
    const scan = scanLine(bytes, start, this.limit);
    switch (scan.kind) {
      case "line":
        return { kind: "line", start, end: scan.end, size: scan.next - start };
      case "need-more":
        return NEED_MORE;
      case "bare-cr":
        return { kind: "error", reason: "bare_cr", size: scan.at + 1 - start };
      case "bare-lf":
        return { kind: "error", reason: "bare_lf", size: scan.at + 1 - start };
      case "too-long":
        this.#skipping = true;
        return this.#skip(bytes, start);
    }
  }

  #skip(bytes: Uint8Array, start: number): CommandFrame {
    const end = endOfNextCrlf(bytes, start);
    if (end >= 0) {
      this.#skipping = false;
      return { kind: "error", reason: "line_too_long", size: end - start };
    }
    // Keep a trailing CR: it may be the first half of the CRLF that ends the line.
    const size = bytes.length - start - (bytes.length > start && bytes[bytes.length - 1] === CR ? 1 : 0);
    return size > 0 ? { kind: "skip", size } : NEED_MORE;
  }
}

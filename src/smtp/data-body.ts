/**
 * The DATA body scanner: finds where a message sent after DATA ends, chunk by chunk, so a proxy
 * relays exactly the message's bytes and treats whatever follows as the next (pipelined) command.
 *
 * RFC 5321 §4.1.1.4: the body ends with CRLF "." CRLF, where the first CRLF ends the body's last
 * line (the CRLF of the DATA command itself counts as the line end before an empty body). The
 * terminator can be split across reads at any byte, or sit in the middle of a larger chunk: the
 * scanner is a state machine whose state carries across calls (a per-chunk search would miss a
 * split terminator, the bug the reference relay shipped with).
 *
 * Bare LF and bare CR (RFC 5321 §2.3.8) are refused: receivers disagree on whether "\n.\n" or
 * "\r.\r" ends a message, and that disagreement smuggles a second message past the proxy
 * (SMTP smuggling, CVE-2023-51764 class). So any LF not preceded by CR, and any CR not followed by
 * LF, is an error, and every terminator the scanner accepts is one all receivers agree on.
 *
 * Dot-stuffing (RFC 5321 §4.5.2) is left alone: the proxy relays the stuffed lines as they are and
 * the backend removes the dots. The size counted against the limit is RFC 1870 §4's: the message's
 * octets with their CRLFs, without the stuffing dots and without the final ".CRLF". Going over the
 * limit does not stop the scan (the session must still find the end to answer 552 in step,
 * RFC 5321 §4.5.3.1.10): every later result says `tooLarge`.
 *
 * Pure: no Bun, no allocation beyond the result object; long lines are skipped with the native
 * indexOf, not a JavaScript loop per byte.
 * @module
 */
import { CR, LF } from "./crlf-line.ts";

export type DataScan =
  /** All `size` bytes (the rest of the chunk) belong to the message; its end is still to come. */
  | { readonly kind: "body"; readonly size: number; readonly tooLarge: boolean }
  /**
   * The message ends after `size` bytes of the chunk (the terminator included); bytes after them
   * are the next command. `messageBytes` is the RFC 1870 size of the whole message.
   */
  | { readonly kind: "end"; readonly size: number; readonly tooLarge: boolean; readonly messageBytes: number }
  /**
   * The byte at chunk offset `start + size` breaks the rule: a bare LF, or the byte after a bare CR
   * (a CR is bare only once the next byte is seen, and it may have come in an earlier chunk). The
   * `size` bytes before it end no line and hold no terminator; the message is refused from there
   * on (SMTP_ERRORS `bare_lf_in_data` / `bare_cr_in_data`) and the session closes.
   */
  | { readonly kind: "error"; readonly reason: "bare_lf_in_data" | "bare_cr_in_data"; readonly size: number };

const DOT = 0x2e;

/** Where the scanner stands, in terms of the bytes already seen. */
const enum At {
  /** At the start of a line (after CRLF, or at the start of the body). */
  LineStart,
  /** Inside a line. */
  Middle,
  /** Just after a CR inside a line: only LF may follow. */
  Cr,
  /** After "." at the start of a line. */
  Dot,
  /** After "." CR at the start of a line: LF ends the message. */
  DotCr,
  /** The message has ended; the scanner must be reset before the next one. */
  Done,
}

export class DataBodyScanner {
  #at = At.LineStart;
  #messageBytes = 0;

  constructor(
    /** Most message bytes (RFC 1870 size) accepted: `maxMessageBytes`. Infinity for no limit. */
    readonly limit = Infinity,
  ) {}

  /** RFC 1870 size of the message so far. */
  get messageBytes(): number {
    return this.#messageBytes;
  }

  /** Ready for the next message (after its DATA command was accepted). */
  reset(): void {
    this.#at = At.LineStart;
    this.#messageBytes = 0;
  }

  /** Scan `chunk[start…]`. After an `end` or `error` result, call `reset` before scanning again. */
  scan(chunk: Uint8Array, start = 0): DataScan {
    if (this.#at === At.Done) throw new Error("DataBodyScanner: scan after the end of a message; call reset()");
    const length = chunk.length;
    let p = start;
    let at = this.#at;
    let counted = this.#messageBytes;
    // `counted` grows by every byte seen except a pending "." at a line start (counted when the
    // line proves to be a stuffed one, never when it proves to be the terminator) and its CR.
    while (p < length) {
      switch (at) {
        case At.Middle: {
          // Skip to the next CR; an LF before it is bare.
          const cr = chunk.indexOf(CR, p);
          const stop = cr < 0 ? length : cr;
          const lf = chunk.indexOf(LF, p);
          if (lf >= 0 && lf < stop) return this.#fail("bare_lf_in_data", lf - start);
          counted += stop - p;
          p = stop;
          if (cr >= 0) {
            at = At.Cr;
            counted++;
            p++;
          }
          break;
        }
        case At.Cr:
          if (chunk[p] !== LF) return this.#fail("bare_cr_in_data", p - start);
          counted++;
          p++;
          at = At.LineStart;
          break;
        case At.LineStart: {
          const b = chunk[p]!;
          if (b === DOT) at = At.Dot; // not counted yet: it is either a stuffing dot or the terminator
          else if (b === LF) return this.#fail("bare_lf_in_data", p - start);
          else {
            counted++;
            at = b === CR ? At.Cr : At.Middle;
          }
          p++;
          break;
        }
        case At.Dot: {
          const b = chunk[p]!;
          // A dot followed by anything but CR was a stuffing dot (RFC 5321 §4.5.2): not counted.
          if (b === CR) at = At.DotCr;
          else if (b === LF) return this.#fail("bare_lf_in_data", p - start);
          else {
            counted++;
            at = At.Middle;
          }
          p++;
          break;
        }
        case At.DotCr:
          if (chunk[p] !== LF) return this.#fail("bare_cr_in_data", p - start);
          this.#at = At.Done;
          this.#messageBytes = counted;
          return { kind: "end", size: p + 1 - start, tooLarge: counted > this.limit, messageBytes: counted };
      }
    }
    this.#at = at;
    this.#messageBytes = counted;
    return { kind: "body", size: length - start, tooLarge: counted > this.limit };
  }

  #fail(reason: "bare_lf_in_data" | "bare_cr_in_data", size: number): DataScan {
    this.#at = At.Done;
    return { kind: "error", reason, size };
  }
}

/**
 * The SMTP reply parser, for what a proxy reads from a backend: the banner, the EHLO reply, and
 * the answers to MAIL, RCPT, DATA and XCLIENT it replays.
 *
 * RFC 5321 §4.2: Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF,
 * every line of one reply carrying the same code. RFC 2034 §4: with ENHANCEDSTATUSCODES the text
 * of each line starts with class.subject.detail and a space. Bounded: a line is at most
 * `maxLineBytes` (RFC 5321 §4.5.3.1.5 says 512; the default allows servers that exceed it) and a
 * reply at most `maxLines` lines, so a backend cannot make the proxy buffer without end.
 * Pure: no Bun.
 * @module
 */
import { scanLine } from "./crlf-line.ts";

export interface ReplyLimits {
  /** Longest reply line, CRLF included. */
  readonly maxLineBytes: number;
  /** Most lines in one reply (an EHLO reply is one line per extension, plus the greeting). */
  readonly maxLines: number;
}

export const DEFAULT_REPLY_LIMITS: ReplyLimits = { maxLineBytes: 2048, maxLines: 100 };

export interface SmtpReply {
  /** The three-digit code, e.g. 250. */
  readonly code: number;
  /** The RFC 3463 enhanced status code of the first line ("2.1.0"), or null when there is none. */
  readonly enhanced: string | null;
  /** Each line's text after the code and separator, enhanced code included, decoded as UTF-8. */
  readonly lines: readonly string[];
}

export type ReplyParse =
  | { readonly kind: "need-more" }
  /** A whole reply; consume `size` bytes (every line's CRLF included). */
  | { readonly kind: "reply"; readonly reply: SmtpReply; readonly size: number }
  | {
    readonly kind: "error";
    readonly reason: "bad_reply_code" | "mixed_reply_codes" | "reply_line_too_long" | "too_many_reply_lines" | "bare_cr_in_reply" | "bare_lf_in_reply";
  };

const NEED_MORE = { kind: "need-more" } as const;
const SP = 0x20;
const HYPHEN = 0x2d;
const utf8 = new TextDecoder();

export type ReplyExtent =
  | { readonly kind: "need-more" }
  /** A whole reply with this code; consume `size` bytes. Nothing is decoded. */
  | { readonly kind: "reply"; readonly code: number; readonly size: number }
  | Extract<ReplyParse, { kind: "error" }>;

/**
 * Where the reply at `bytes[start…]` ends and its code, checked as {@link parseReply} checks it but
 * without decoding its text: what the relay needs of most replies (it passes them on as they are).
 */
export function replyExtent(bytes: Uint8Array, start = 0, limits: ReplyLimits = DEFAULT_REPLY_LIMITS): ReplyExtent {
  const r = scanReply(bytes, start, limits, null);
  return typeof r === "number" ? { kind: "reply", code: lastCode, size: r - start } : r;
}

/** Parse the reply at `bytes[start…]`. */
export function parseReply(bytes: Uint8Array, start = 0, limits: ReplyLimits = DEFAULT_REPLY_LIMITS): ReplyParse {
  // First find the whole reply, without decoding anything: most calls end in need-more.
  const lineEnds: number[] = [];
  const r = scanReply(bytes, start, limits, lineEnds);
  if (typeof r !== "number") return r;
  const code = lastCode;
  const lines: string[] = [];
  let lineStart = start;
  for (const end of lineEnds) {
    lines.push(utf8.decode(bytes.subarray(Math.min(lineStart + 4, end), end)));
    lineStart = end + 2;
  }
  return { kind: "reply", reply: { code, enhanced: enhancedCode(lines[0]!, code), lines }, size: r - start };
}

/** The code of the reply {@link scanReply} found last (read right after it returns). */
let lastCode = -1;

/**
 * Find the whole reply: its end offset (and its code in `lastCode`), need-more, or the error;
 * each line's end goes into `lineEnds` when given.
 */
function scanReply(bytes: Uint8Array, start: number, limits: ReplyLimits, lineEnds: number[] | null): number | typeof NEED_MORE | Extract<ReplyParse, { kind: "error" }> {
  let p = start;
  let code = -1;
  let count = 0;
  for (;;) {
    if (count === limits.maxLines) return { kind: "error", reason: "too_many_reply_lines" };
    const scan = scanLine(bytes, p, limits.maxLineBytes);
    if (scan.kind === "need-more") return NEED_MORE;
    if (scan.kind === "too-long") return { kind: "error", reason: "reply_line_too_long" };
    if (scan.kind === "bare-cr") return { kind: "error", reason: "bare_cr_in_reply" };
    if (scan.kind === "bare-lf") return { kind: "error", reason: "bare_lf_in_reply" };
    const lineCode = replyCode(bytes, p, scan.end);
    if (lineCode < 0) return { kind: "error", reason: "bad_reply_code" };
    if (code >= 0 && lineCode !== code) return { kind: "error", reason: "mixed_reply_codes" };
    code = lineCode;
    count++;
    lineEnds?.push(scan.end);
    const last = scan.end === p + 3 || bytes[p + 3] === SP;
    p = scan.next;
    if (last) break;
  }
  lastCode = code;
  return p;
}

/** The code of a reply line: three digits (2-5, 0-5, 0-9) then SP, "-" or the end; -1 otherwise. */
function replyCode(bytes: Uint8Array, start: number, end: number): number {
  if (end - start < 3) return -1;
  const a = bytes[start]! - 0x30;
  const b = bytes[start + 1]! - 0x30;
  const c = bytes[start + 2]! - 0x30;
  // RFC 5321 §4.2.1: the first digit is 2-5 (1yz is unused in SMTP), the second 0-5.
  if (a < 2 || a > 5 || b < 0 || b > 5 || c < 0 || c > 9) return -1;
  if (end > start + 3 && bytes[start + 3] !== SP && bytes[start + 3] !== HYPHEN) return -1;
  return a * 100 + b * 10 + c;
}

/**
 * RFC 3463 §2 / RFC 2034 §4: status-code = class "." subject "." detail, class 2/4/5 matching the
 * reply's first digit, subject and detail of 1-3 digits, followed by SP or the end of the text.
 */
export function enhancedCode(text: string, code: number): string | null {
  const m = /^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)/.exec(text);
  if (m === null || Number(m[1]) !== Math.floor(code / 100)) return null;
  return `${m[1]}.${m[2]}.${m[3]}`;
}

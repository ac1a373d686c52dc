/**
 * The replies a proxy sends as its own: the 220 banner, the EHLO reply from a capability list,
 * and error replies with enhanced status codes (SMTP_ERRORS). RFC 5321 §4.2 (reply syntax),
 * §4.3.1 (greeting), §4.1.1.1 (EHLO reply), RFC 2034 (enhanced codes, not used in the greeting or
 * the EHLO reply, §3). Text is made safe for the wire: anything outside printable ASCII becomes
 * "?" (a reply line must not carry a CR or LF of its own) and each line is cut to fit RFC 5321
 * §4.5.3.1.5's 512 octets. Pure: no Bun.
 * @module
 */
import { SMTP_ERRORS, type SmtpErrorReason } from "./errors.ts";

/** RFC 5321 §4.5.3.1.5: a reply line including the code and CRLF. */
export const MAX_REPLY_LINE_BYTES = 512;

const ascii = new TextEncoder();

/**
 * A reply with `code`, one line per element of `lines` (at least one), each prefixed with
 * `enhanced` when given: "250-a\r\n250 b\r\n".
 */
export function buildReply(code: number, lines: readonly string[], enhanced: string | null = null): Uint8Array {
  if (!Number.isInteger(code) || code < 200 || code > 599) throw new RangeError(`buildReply: bad code ${code}`);
  if (lines.length === 0) throw new RangeError("buildReply: a reply has at least one line");
  const room = MAX_REPLY_LINE_BYTES - 4 - 2 - (enhanced === null ? 0 : enhanced.length + 1);
  let out = "";
  lines.forEach((line, i) => {
    const text = wireSafe(line).slice(0, room);
    out += `${code}${i === lines.length - 1 ? " " : "-"}${enhanced === null ? "" : `${enhanced} `}${text}\r\n`;
  });
  return ascii.encode(out);
}

/** RFC 5321 §4.3.1: "220 " domain [ SP text ] CRLF. */
export function buildBanner(hostname: string, text = "ESMTP"): Uint8Array {
  return buildReply(220, [text === "" ? hostname : `${hostname} ${text}`]);
}

/**
 * RFC 5321 §4.1.1.1: "250-" domain [ SP greeting ], then one line per extension keyword with
 * its parameters ("SIZE 52428800"), the last line with "250 ".
 */
export function buildEhloReply(hostname: string, greeting: string, capabilities: readonly string[]): Uint8Array {
  return buildReply(250, [greeting === "" ? hostname : `${hostname} ${greeting}`, ...capabilities]);
}

export interface ProxyCapabilityOptions {
  /** RFC 1870 SIZE, the listener's `smtp.maxMessageBytes` (0 = no fixed limit). */
  readonly maxMessageBytes: number;
  /** RFC 3207: offer STARTTLS (a certificate is configured and the session is not on TLS yet; §4.2 forbids offering it again after). */
  readonly startTls: boolean;
  /** RFC 6531: offer SMTPUTF8 (the backends take it). */
  readonly smtpUtf8: boolean;
}

/**
 * The extensions the proxy itself offers before routing: it can pipeline (it answers in order),
 * relays 8-bit bodies unchanged, and sends enhanced codes. Not offered: CHUNKING (BDAT would need
 * a second body framing), DSN, AUTH (the backend authenticates, after routing).
 */
export function proxyCapabilities(o: ProxyCapabilityOptions): string[] {
  const out = ["PIPELINING", `SIZE ${Math.max(0, Math.floor(o.maxMessageBytes))}`, "8BITMIME", "ENHANCEDSTATUSCODES"];
  if (o.startTls) out.push("STARTTLS");
  if (o.smtpUtf8) out.push("SMTPUTF8");
  return out;
}

/** The reply for `reason` (SMTP_ERRORS): e.g. "500 5.5.2 Line too long (line_too_long)". */
export function errorReply(reason: SmtpErrorReason, detail = ""): Uint8Array {
  const e = SMTP_ERRORS[reason];
  return buildReply(e.code, [`${e.text}${detail === "" ? "" : `: ${detail}`} (${reason})`], e.enhanced);
}

function wireSafe(text: string): string {
  let out = "";
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    out += c >= 0x20 && c <= 0x7e ? ch : "?";
  }
  return out;
}

/**
 * The replies the proxy sends as itself during a session, with their RFC 5321 §4.2 codes and
 * RFC 3463 enhanced codes (the proxy offers ENHANCEDSTATUSCODES). Each carries a stable reason in
 * its text where it refuses something, as src/smtp/errors.ts does. Pure: no Bun.
 * @module
 */
import { buildReply } from "./reply-builder.ts";

const r = (code: number, enhanced: string, text: string): Uint8Array => buildReply(code, [text], enhanced);

export const OK = r(250, "2.0.0", "OK");
export const SENDER_OK = r(250, "2.1.0", "Sender OK");
export const BYE = r(221, "2.0.0", "Bye");
export const READY_FOR_TLS = r(220, "2.0.0", "Ready to start TLS");
export const HELP = r(214, "2.0.0", "See RFC 5321");
export const CANNOT_VRFY = r(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
/** RFC 5321 §4.1.4: MAIL before EHLO/HELO is out of sequence. */
export const NEED_HELO = r(503, "5.5.1", "Send EHLO or HELO first (bad_sequence)");
export const NESTED_MAIL = r(503, "5.5.1", "Sender already given (bad_sequence)");
export const NEED_MAIL = r(503, "5.5.1", "Send MAIL first (bad_sequence)");
export const NEED_RCPT = r(503, "5.5.1", "No valid recipients (bad_sequence)");
/** RFC 3207 §4: STARTTLS once only; and after MAIL it would drop a transaction. */
export const TLS_ALREADY = r(503, "5.5.1", "TLS already active (bad_sequence)");
export const TLS_AFTER_ROUTING = r(503, "5.5.1", "STARTTLS must come before MAIL (bad_sequence)");
export const TLS_UNAVAILABLE = r(454, "4.7.0", "TLS not available (no_certificate)");
/** RFC 3207 §4: "530 Must issue a STARTTLS command first". */
export const TLS_REQUIRED = r(530, "5.7.0", "Must issue a STARTTLS command first (tls_required)");
export const NOT_OFFERED = r(502, "5.5.1", "Command not implemented (not_offered)");
export const TOO_MANY_COMMANDS = r(421, "4.7.0", "Too many commands before a recipient (too_many_commands)");
/** No route serves the recipient's domain: this proxy is not its relay. */
export const NO_ROUTE_FOR_RCPT = r(550, "5.7.1", "Relay access denied (no_route)");
/** A later recipient whose domain another route serves: the sender retries it in its own transaction. */
export const OTHER_ROUTE_RCPT = r(451, "4.3.0", "Recipient served by another route: send it in a new transaction (rcpt_other_route)");

/** RFC 1870 §6.1: SIZE declared over the limit. */
export function sizeTooLarge(limit: number): Uint8Array {
  return r(552, "5.3.4", `Message size exceeds fixed limit of ${limit} bytes (message_too_large)`);
}

/** RFC 5321 §4.5.3.2 timeouts: 421 and RFC 3463 X.4.2 ("bad connection"), as Postfix answers, with the reason. */
export function timedOut(hostname: string, reason: string): Uint8Array {
  return r(421, "4.4.2", `${hostname} Error: timeout exceeded (${reason})`);
}

/** RFC 5321 §3.8: 421 before closing, with the reason. */
export function closing(hostname: string, reason: string, detail = ""): Uint8Array {
  return r(421, "4.3.0", `${hostname} closing connection: ${detail === "" ? reason : `${detail}`} (${reason})`);
}

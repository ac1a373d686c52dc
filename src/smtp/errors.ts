/**
 * Every reason the SMTP framers and parsers give, with the reply a proxy sends for it: the basic
 * code (RFC 5321 §4.2.2–4.2.3), the enhanced status code (RFC 3463, sent because the proxy offers
 * ENHANCEDSTATUSCODES, RFC 2034), the text, and whether the session closes after it. Reasons are
 * stable snake_case: they go into the reply text, the access log and metrics.
 * Pure: no Bun.
 * @module
 */

export interface SmtpErrorReply {
  /** Three-digit reply code. */
  readonly code: number;
  /** RFC 3463 class.subject.detail. */
  readonly enhanced: string;
  /** Human text (the reason is appended by `errorReply`). */
  readonly text: string;
  /**
   * True when the session must close after answering: the peer broke the line discipline in a way
   * that leaves no safe place to resynchronise (RFC 5321 §3.8 lets a server close after a reply).
   */
  readonly closes: boolean;
}

const e = (code: number, enhanced: string, text: string, closes = false): SmtpErrorReply => ({ code, enhanced, text, closes });

export const SMTP_ERRORS = {
  // Line discipline (command-framer.ts). RFC 5321 §4.5.3.1.4: "500 Line too long".
  line_too_long: e(500, "5.5.2", "Line too long"),
  // RFC 5321 §2.3.8: lines end in CRLF only. Postfix likewise refuses bare newlines and disconnects.
  bare_lf: e(500, "5.5.2", "Bare LF received, lines must end in CRLF", true),
  bare_cr: e(500, "5.5.2", "Bare CR received, lines must end in CRLF", true),
  // Commands (command.ts). RFC 5321 §4.2.4: 500 unrecognised, 501 bad arguments, 502 not implemented.
  unknown_command: e(500, "5.5.1", "Command not recognized"),
  command_not_implemented: e(502, "5.5.1", "Command not implemented"),
  control_character: e(500, "5.5.2", "Control character in command"),
  missing_argument: e(501, "5.5.4", "Argument required"),
  unexpected_argument: e(501, "5.5.4", "No argument allowed"),
  bad_helo_domain: e(501, "5.5.4", "Invalid domain or address literal"),
  bad_mail_syntax: e(501, "5.5.2", "Syntax: MAIL FROM:<address>"),
  bad_rcpt_syntax: e(501, "5.5.2", "Syntax: RCPT TO:<address>"),
  // RFC 3463 X.1.7 bad sender address syntax, X.1.3 bad destination address syntax.
  bad_reverse_path: e(501, "5.1.7", "Bad sender address syntax"),
  bad_forward_path: e(501, "5.1.3", "Bad recipient address syntax"),
  bad_bdat_syntax: e(501, "5.5.4", "Syntax: BDAT size [LAST]"),
  bad_parameter: e(501, "5.5.4", "Invalid parameter"),
  duplicate_parameter: e(501, "5.5.4", "Duplicate parameter"),
  // RFC 5321 §4.1.1.11: 555 MAIL FROM/RCPT TO parameters not recognized or not implemented.
  unknown_parameter: e(555, "5.5.4", "Parameter not recognized or not implemented"),
  // Session policy answers for commands the proxy does not relay before routing.
  xclient_refused: e(550, "5.7.0", "XCLIENT is not accepted from clients"),
  // DATA (data-body.ts). RFC 1870 §6.3 / RFC 5321 §4.5.3.1.10: 552 for a message over the size limit.
  message_too_large: e(552, "5.3.4", "Message size exceeds fixed limit"),
  bare_lf_in_data: e(550, "5.5.2", "Bare LF in message data, lines must end in CRLF", true),
  bare_cr_in_data: e(550, "5.5.2", "Bare CR in message data, lines must end in CRLF", true),
} as const satisfies Record<string, SmtpErrorReply>;

export type SmtpErrorReason = keyof typeof SMTP_ERRORS;

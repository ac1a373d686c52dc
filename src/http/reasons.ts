/**
 * Why a message head is refused, as stable snake_case reasons (they go into logs and metrics), and the
 * status a server answers with. A request's status follows the RFC that names the rule; a response
 * from an upstream that breaks framing is always 502 for the client (RFC 9112 §6.3 ¶5, RFC 9110 §15.6.3).
 * Inside the parsers a reason travels as a small negative number (no allocation, no string compare);
 * the entry points turn it into one of the shared, frozen error objects below.
 * @module
 */

/** Every reason, each with the status a request refused for it gets. */
const REQUEST_STATUS = {
  // Line structure (RFC 9112 §2.2): CRLF only, no bare CR, no whitespace before the first field.
  bare_lf: 400,
  bare_cr: 400,
  whitespace_after_start_line: 400,
  // Field lines (RFC 9112 §5): a token, a colon with nothing before it, a value without CTLs.
  obs_fold: 400, // RFC 9112 §5.2: a server MUST reject (or replace); we reject
  whitespace_before_colon: 400, // RFC 9112 §5.1: a server MUST reject with 400
  missing_colon: 400,
  invalid_header_name: 400,
  invalid_header_value: 400,
  // Request line (RFC 9112 §3).
  invalid_method: 400,
  invalid_target: 400,
  invalid_request_line: 400,
  invalid_version: 400,
  unsupported_version: 505, // RFC 9110 §15.6.6
  // Framing (RFC 9112 §6).
  invalid_content_length: 400,
  content_length_overflow: 400,
  conflicting_content_length: 400,
  content_length_with_transfer_encoding: 400,
  invalid_transfer_encoding: 400,
  chunked_not_last: 400, // RFC 9112 §6.3 ¶4: MUST respond 400 and close
  chunked_twice: 400, // RFC 9112 §7: chunked MUST NOT be applied more than once
  unknown_transfer_coding: 501, // RFC 9112 §6.1: SHOULD respond 501
  transfer_encoding_in_http10: 400, // RFC 9112 §6.1: treat the framing as faulty
  // Host (RFC 9112 §3.2: MUST respond 400) and Connection.
  missing_host: 400,
  multiple_host: 400,
  invalid_host: 400,
  host_mismatch: 400, // an absolute-form target's authority and Host differ (parse-head.ts finishRequest)
  invalid_connection: 400,
  // Limits (RFC 6585 §5).
  header_too_large: 431,
  too_many_headers: 431,
  // Status line (responses only).
  invalid_status_line: 400,
  invalid_status: 400,
} as const;

export type HeadReason = keyof typeof REQUEST_STATUS;
export type HeadStatus = (typeof REQUEST_STATUS)[HeadReason] | 502;

/** A refused head: answer `status` (a response's is always 502) and close the connection. */
export interface HeadError {
  readonly kind: "error";
  readonly reason: HeadReason;
  readonly status: HeadStatus;
}

const REASONS = Object.keys(REQUEST_STATUS) as HeadReason[];

/** "The bytes stop before the unit does": not a reason, the parser asks for more. */
export const INCOMPLETE = -1;

/** The internal code of `reason` (always < -1). */
export function code(reason: HeadReason): number {
  return -2 - REASONS.indexOf(reason);
}

export function reasonOf(c: number): HeadReason {
  return REASONS[-2 - c]!;
}

const freeze = (reason: HeadReason, status: HeadStatus): HeadError => Object.freeze({ kind: "error", reason, status });
const REQUEST_ERRORS = REASONS.map((r) => freeze(r, REQUEST_STATUS[r]));
const RESPONSE_ERRORS = REASONS.map((r) => freeze(r, 502));

/** The shared error object of a request refused with code `c`. */
export function requestError(c: number): HeadError {
  return REQUEST_ERRORS[-2 - c]!;
}

/** The shared error object of an upstream response refused with code `c`. */
export function responseError(c: number): HeadError {
  return RESPONSE_ERRORS[-2 - c]!;
}

/** Codes the parsers return, named once (module constants: compared as numbers). */
export const E = Object.fromEntries(REASONS.map((r) => [r, code(r)])) as { readonly [R in HeadReason]: number };

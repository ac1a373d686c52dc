/**
 * The SMTP command parser: one command line (as the framer delimits it, CRLF excluded) to a named
 * command with the facts a proxy routes on, or an error reason from SMTP_ERRORS.
 *
 * Grammar: RFC 5321 §4.1.1 (commands), §4.1.2 (paths and mailboxes), §4.1.1.11 (parameters),
 * RFC 1870 (SIZE), RFC 6152 (BODY=8BITMIME), RFC 6531 (SMTPUTF8: UTF-8 in addresses),
 * RFC 3030 (BDAT). Verbs and keywords are case-insensitive (§2.4).
 *
 * Liberal where real clients differ from the grammar and nothing is ambiguous: runs of spaces
 * between words and trailing spaces are accepted, as is a space after "FROM:"/"TO:" (Postfix
 * accepts both); local parts longer than §4.5.3.1.1's 64 octets are accepted (VERP and SRS
 * addresses exceed it and receivers take them). Strict where it matters for routing or safety:
 * control characters are refused, paths need their angle brackets, paths are at most 256 octets
 * (§4.5.3.1.3), domains are checked label by label, and a MAIL/RCPT parameter the proxy does not
 * offer is refused with 555 (it advertises only SIZE, 8BITMIME and SMTPUTF8 of the ones that
 * carry parameters). Strings are decoded only for what routing needs (domains, paths, arguments).
 * Pure: no Bun.
 * @module
 */
import type { SmtpErrorReason } from "./errors.ts";

/** RFC 5321 §4.5.3.1.3: a reverse- or forward-path, angle brackets included. */
export const MAX_PATH_BYTES = 256;
/** RFC 5321 §4.5.3.1.2: a domain name or address literal. */
export const MAX_DOMAIN_BYTES = 255;

export interface MailParameters {
  /** RFC 1870 SIZE=n, the declared message size (null when absent). */
  readonly size: number | null;
  /** RFC 6152 BODY=7BIT / BODY=8BITMIME (null when absent). */
  readonly body: "7BIT" | "8BITMIME" | null;
  /** RFC 6531 SMTPUTF8 (no value). */
  readonly smtpUtf8: boolean;
}

export type SmtpCommand =
  /** `domain` as the client wrote it, or the whole address literal with its brackets. */
  | { readonly kind: "ehlo" | "helo"; readonly domain: string; readonly addressLiteral: boolean }
  /** `reversePath` is the mailbox without brackets or source route; "" is the null path `<>`. */
  | { readonly kind: "mail"; readonly reversePath: string; readonly params: MailParameters }
  /**
   * `domain` is the recipient's domain lowercased, for routing ("" for the special `<Postmaster>`,
   * RFC 5321 §4.1.1.3, which the receiver must accept without a domain).
   */
  | { readonly kind: "rcpt"; readonly forwardPath: string; readonly domain: string }
  | { readonly kind: "data" | "rset" | "quit" | "starttls" }
  /** AUTH and XCLIENT are recognised so the session can answer them; their arguments are not parsed. */
  | { readonly kind: "auth" | "xclient" }
  /** RFC 3030 BDAT (the proxy does not offer CHUNKING, so a session refuses it, but knows its size). */
  | { readonly kind: "bdat"; readonly chunkSize: number; readonly last: boolean }
  /** NOOP and HELP take an optional string, VRFY and EXPN a required one ("" when absent). */
  | { readonly kind: "noop" | "help" | "vrfy" | "expn"; readonly argument: string };

export type CommandParse = SmtpCommand | { readonly kind: "error"; readonly reason: SmtpErrorReason };

const SP = 0x20;
const LT = 0x3c;
const GT = 0x3e;
const AT = 0x40;
const DOT = 0x2e;
const COLON = 0x3a;
const COMMA = 0x2c;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const EQUALS = 0x3d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;

const utf8 = new TextDecoder();

type Verb = "ehlo" | "helo" | "mail" | "rcpt" | "data" | "bdat" | "rset" | "noop" | "quit" | "starttls" | "auth" | "xclient" | "vrfy" | "expn" | "help";
const VERBS: readonly Verb[] = ["ehlo", "helo", "mail", "rcpt", "data", "bdat", "rset", "noop", "quit", "starttls", "auth", "xclient", "vrfy", "expn", "help"];
const VERB_CODES = VERBS.map((v) => Array.from(v, (c) => c.charCodeAt(0)));

function err(reason: SmtpErrorReason): CommandParse {
  return { kind: "error", reason };
}

/** Parse the command line `bytes[start, end)` (CRLF excluded). */
export function parseCommand(bytes: Uint8Array, start: number, end: number): CommandParse {
  for (let p = start; p < end; p++) {
    const b = bytes[p]!;
    if (b < SP || b === 0x7f) return err("control_character");
  }
  while (end > start && bytes[end - 1] === SP) end--;
  let verbEnd = start;
  while (verbEnd < end && bytes[verbEnd] !== SP) verbEnd++;
  const verb = lookupVerb(bytes, start, verbEnd);
  if (verb === null) return err("unknown_command");
  let arg = verbEnd;
  while (arg < end && bytes[arg] === SP) arg++;
  const hasArg = arg < end;
  switch (verb) {
    case "ehlo":
    case "helo":
      return parseHelo(verb, bytes, arg, end);
    case "mail":
      return parseMail(bytes, arg, end);
    case "rcpt":
      return parseRcpt(bytes, arg, end);
    case "data":
    case "rset":
    case "quit":
    case "starttls":
      return hasArg ? err("unexpected_argument") : { kind: verb };
    case "auth":
    case "xclient":
      return { kind: verb };
    case "bdat":
      return parseBdat(bytes, arg, end);
    case "vrfy":
    case "expn":
      if (!hasArg) return err("missing_argument");
      return { kind: verb, argument: utf8.decode(bytes.subarray(arg, end)) };
    case "noop":
    case "help":
      return { kind: verb, argument: hasArg ? utf8.decode(bytes.subarray(arg, end)) : "" };
  }
}

function lookupVerb(bytes: Uint8Array, start: number, end: number): Verb | null {
  const n = end - start;
  outer: for (let v = 0; v < VERBS.length; v++) {
    const code = VERB_CODES[v]!;
    if (code.length !== n) continue;
    // `| 0x20` folds ASCII upper case to lower; no non-letter folds onto a lower-case letter.
    for (let i = 0; i < n; i++) if ((bytes[start + i]! | 0x20) !== code[i]) continue outer;
    return VERBS[v]!;
  }
  return null;
}

/** RFC 5321 §4.1.1.1: EHLO SP ( Domain / address-literal ), HELO SP Domain (literals seen in practice too). */
function parseHelo(kind: "ehlo" | "helo", bytes: Uint8Array, start: number, end: number): CommandParse {
  if (start >= end) return err("missing_argument");
  for (let p = start; p < end; p++) if (bytes[p] === SP) return err("unexpected_argument");
  const literal = bytes[start] === LBRACKET;
  const ok = literal ? addressLiteralEnd(bytes, start, end) === end : isDomain(bytes, start, end, true);
  if (!ok || end - start > MAX_DOMAIN_BYTES) return err("bad_helo_domain");
  return { kind, domain: utf8.decode(bytes.subarray(start, end)), addressLiteral: literal };
}

/** RFC 5321 §4.1.1.2: MAIL FROM:Reverse-path [SP Mail-parameters]. */
function parseMail(bytes: Uint8Array, start: number, end: number): CommandParse {
  const at = afterKeyword(bytes, start, end, FROM);
  if (at < 0) return err("bad_mail_syntax");
  const path = parsePath(bytes, at, end, true, false);
  if (path === null) return err("bad_reverse_path");
  let size: number | null = null;
  let body: "7BIT" | "8BITMIME" | null = null;
  let smtpUtf8 = false;
  const seen = new Set<string>();
  let p = path.next;
  while (p < end) {
    const param = nextParameter(bytes, p, end);
    if (param === null) return err("bad_parameter");
    p = param.next;
    if (seen.has(param.keyword)) return err("duplicate_parameter");
    seen.add(param.keyword);
    const value = param.valueStart < 0 ? null : bytes.subarray(param.valueStart, param.valueEnd);
    switch (param.keyword) {
      case "SIZE":
        if (value === null || value.length > 15 || !value.every(isDigit)) return err("bad_parameter");
        size = Number(utf8.decode(value));
        break;
      case "BODY": {
        const v = value === null ? "" : utf8.decode(value).toUpperCase();
        if (v !== "7BIT" && v !== "8BITMIME") return err(v === "BINARYMIME" ? "unknown_parameter" : "bad_parameter");
        body = v;
        break;
      }
      case "SMTPUTF8":
        if (value !== null) return err("bad_parameter");
        smtpUtf8 = true;
        break;
      default:
        return err("unknown_parameter");
    }
  }
  return { kind: "mail", reversePath: path.mailbox, params: { size, body, smtpUtf8 } };
}

/** RFC 5321 §4.1.1.3: RCPT TO:( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path ) [SP Rcpt-parameters]. */
function parseRcpt(bytes: Uint8Array, start: number, end: number): CommandParse {
  const at = afterKeyword(bytes, start, end, TO);
  if (at < 0) return err("bad_rcpt_syntax");
  const path = parsePath(bytes, at, end, false, true);
  if (path === null) return err("bad_forward_path");
  if (path.next < end) {
    // No RCPT parameter is offered (DSN's NOTIFY/ORCPT would need the DSN extension).
    return nextParameter(bytes, path.next, end) === null ? err("bad_parameter") : err("unknown_parameter");
  }
  return { kind: "rcpt", forwardPath: path.mailbox, domain: path.domain.toLowerCase() };
}

/** RFC 3030 §2: BDAT SP chunk-size [ SP end-marker ]. */
function parseBdat(bytes: Uint8Array, start: number, end: number): CommandParse {
  let p = start;
  while (p < end && isDigit(bytes[p]!)) p++;
  if (p === start || p - start > 15) return err("bad_bdat_syntax");
  const chunkSize = Number(utf8.decode(bytes.subarray(start, p)));
  if (p === end) return { kind: "bdat", chunkSize, last: false };
  if (bytes[p] !== SP) return err("bad_bdat_syntax");
  while (p < end && bytes[p] === SP) p++;
  if (!keywordAt(bytes, p, end, LAST) || p + LAST.length !== end) return err("bad_bdat_syntax");
  return { kind: "bdat", chunkSize, last: true };
}

const FROM = codes("from:");
const TO = codes("to:");
const LAST = codes("last");
const POSTMASTER = codes("postmaster");

function codes(s: string): number[] {
  return Array.from(s, (c) => c.charCodeAt(0));
}

function keywordAt(bytes: Uint8Array, at: number, end: number, word: readonly number[]): boolean {
  if (end - at < word.length) return false;
  for (let i = 0; i < word.length; i++) if ((bytes[at + i]! | 0x20) !== word[i]) return false;
  return true;
}

/** Offset after "FROM:"/"TO:" and any spaces, or -1. */
function afterKeyword(bytes: Uint8Array, start: number, end: number, word: readonly number[]): number {
  if (!keywordAt(bytes, start, end, word)) return -1;
  let p = start + word.length;
  while (p < end && bytes[p] === SP) p++;
  return p;
}

interface Path {
  /** The mailbox without brackets or source route ("" for the null path). */
  readonly mailbox: string;
  /** Its domain as written ("" for the null path and `<Postmaster>`). */
  readonly domain: string;
  /** Offset after the path and the spaces that follow it. */
  readonly next: number;
}

/**
 * RFC 5321 §4.1.2: Path = "<" [ A-d-l ":" ] Mailbox ">"; Reverse-path = Path / "<>".
 * A source route (A-d-l) must be accepted and ignored (§4.1.1.3, §C). Null when malformed (the
 * caller names the reason for MAIL or RCPT).
 */
function parsePath(bytes: Uint8Array, start: number, end: number, allowNull: boolean, allowPostmaster: boolean): Path | null {
  if (start >= end || bytes[start] !== LT) return null;
  const close = pathEnd(bytes, start, end);
  if (close < 0 || close + 1 - start > MAX_PATH_BYTES) return null;
  let next = close + 1;
  if (next < end && bytes[next] !== SP) return null;
  while (next < end && bytes[next] === SP) next++;
  let p = start + 1;
  if (p === close) return allowNull ? { mailbox: "", domain: "", next } : null;
  if (allowPostmaster && close - p === POSTMASTER.length && keywordAt(bytes, p, close, POSTMASTER)) {
    return { mailbox: utf8.decode(bytes.subarray(p, close)), domain: "", next };
  }
  if (bytes[p] === AT) {
    // A-d-l = At-domain *( "," At-domain ), At-domain = "@" Domain; then ":".
    for (;;) {
      if (bytes[p] !== AT) return null;
      let q = p + 1;
      while (q < close && bytes[q] !== COMMA && bytes[q] !== COLON) q++;
      if (q >= close || !isDomain(bytes, p + 1, q, false)) return null;
      p = q + 1;
      if (bytes[q] === COLON) break;
    }
  }
  const mailboxStart = p;
  const localEnd = localPartEnd(bytes, p, close);
  if (localEnd < 0 || localEnd >= close || bytes[localEnd] !== AT) return null;
  const domainStart = localEnd + 1;
  const domainOk = bytes[domainStart] === LBRACKET
    ? addressLiteralEnd(bytes, domainStart, close) === close
    : isDomain(bytes, domainStart, close, false);
  if (!domainOk) return null;
  return {
    mailbox: utf8.decode(bytes.subarray(mailboxStart, close)),
    domain: utf8.decode(bytes.subarray(domainStart, close)),
    next,
  };
}

/** Offset of the ">" that closes the path opened at `start`, skipping quoted strings; -1 if none. */
function pathEnd(bytes: Uint8Array, start: number, end: number): number {
  let quoted = false;
  for (let p = start + 1; p < end; p++) {
    const b = bytes[p]!;
    if (quoted) {
      if (b === BACKSLASH) p++;
      else if (b === QUOTE) quoted = false;
    } else if (b === QUOTE) quoted = true;
    else if (b === GT) return p;
    else if (b === LT) return -1;
  }
  return -1;
}

/**
 * RFC 5321 §4.1.2: Local-part = Dot-string / Quoted-string. Returns the offset after it, or -1.
 * Octets of 0x80 and above are UTF-8 (RFC 6531 §3.3 extends atext and qtextSMTP with them).
 */
function localPartEnd(bytes: Uint8Array, start: number, end: number): number {
  if (bytes[start] === QUOTE) {
    for (let p = start + 1; p < end; p++) {
      const b = bytes[p]!;
      if (b === QUOTE) return p + 1; // *QcontentSMTP: "" is a valid (if odd) local part
      if (b === BACKSLASH) {
        // quoted-pairSMTP = %d92 %d32-126
        if (p + 1 >= end || bytes[p + 1]! < 32 || bytes[p + 1]! > 126) return -1;
        p++;
      }
    }
    return -1;
  }
  // Dot-string = Atom *("." Atom)
  let p = start;
  let atomLength = 0;
  for (; p < end; p++) {
    const b = bytes[p]!;
    if (b === DOT) {
      if (atomLength === 0) return -1;
      atomLength = 0;
    } else if (isAtext(b)) atomLength++;
    else break;
  }
  return atomLength === 0 ? -1 : p;
}

/** RFC 5322 atext, plus UTF-8 octets (RFC 6531). */
function isAtext(b: number): boolean {
  if (b >= 0x80) return true;
  if ((b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39)) return true;
  return ATEXT_SPECIALS.includes(b);
}
const ATEXT_SPECIALS = codes("!#$%&'*+-/=?^_`{|}~");

/**
 * RFC 5321 §4.1.2 Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str], plus
 * UTF-8 U-labels (RFC 6531 §3.3). `underscore` admits "_" (EHLO names of Windows hosts carry it).
 */
function isDomain(bytes: Uint8Array, start: number, end: number, underscore: boolean): boolean {
  if (start >= end || end - start > MAX_DOMAIN_BYTES) return false;
  let labelStart = start;
  for (let p = start; p <= end; p++) {
    const b = p < end ? bytes[p]! : DOT;
    if (b === DOT) {
      const n = p - labelStart;
      if (n === 0 || n > 63 || bytes[labelStart] === 0x2d || bytes[p - 1] === 0x2d) return false;
      labelStart = p + 1;
      continue;
    }
    const ok = b >= 0x80 || (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || (underscore && b === 0x5f);
    if (!ok) return false;
  }
  return true;
}

/**
 * RFC 5321 §4.1.3 address-literal = "[" ( IPv4 / IPv6 / General-address-literal ) "]", taken as
 * "[" 1*dcontent "]" (dcontent = %d33-90 / %d94-126), which covers all three. Returns the offset
 * after "]", or -1.
 */
function addressLiteralEnd(bytes: Uint8Array, start: number, end: number): number {
  if (bytes[start] !== LBRACKET) return -1;
  for (let p = start + 1; p < end; p++) {
    const b = bytes[p]!;
    if (b === RBRACKET) return p > start + 1 ? p + 1 : -1;
    if (b < 33 || b > 126 || b === LBRACKET || b === BACKSLASH) return -1;
  }
  return -1;
}

interface Parameter {
  /** Upper-cased keyword. */
  readonly keyword: string;
  /** Value bounds; valueStart is -1 when the parameter has no "=value". */
  readonly valueStart: number;
  readonly valueEnd: number;
  /** Offset after the parameter and the spaces that follow it. */
  readonly next: number;
}

/**
 * RFC 5321 §4.1.2: esmtp-param = esmtp-keyword ["=" esmtp-value];
 * esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); esmtp-value = 1*(%d33-60 / %d62-126),
 * plus UTF-8 (RFC 6531 §3.3). Null when malformed.
 */
function nextParameter(bytes: Uint8Array, start: number, end: number): Parameter | null {
  let p = start;
  while (p < end && (isAlnum(bytes[p]!) || (p > start && bytes[p] === 0x2d))) p++;
  if (p === start || p - start > 64) return null;
  const keyword = utf8.decode(bytes.subarray(start, p)).toUpperCase();
  let valueStart = -1;
  let valueEnd = -1;
  if (p < end && bytes[p] === EQUALS) {
    valueStart = ++p;
    while (p < end && bytes[p] !== SP) {
      const b = bytes[p]!;
      if (b < 33 || b === EQUALS || b === 127) return null;
      p++;
    }
    valueEnd = p;
    if (valueEnd === valueStart) return null;
  }
  if (p < end && bytes[p] !== SP) return null;
  while (p < end && bytes[p] === SP) p++;
  return { keyword, valueStart, valueEnd, next: p };
}

function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39;
}

function isAlnum(b: number): boolean {
  return isDigit(b) || (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a);
}

/**
 * The request and response head parsers (RFC 9112 §2-§6): bytes in, a filled RequestHead/ResponseHead,
 * `need-more`, or a refusal with a reason and a status. Strict: every rule of RFC 9112 a recipient MUST
 * (or, for a request, SHOULD) enforce is refused; the only leniency is where the RFC tells a proxy to
 * repair a response (whitespace before a colon; Content-Length beside Transfer-Encoding), and it makes
 * the head not `clean` so it is re-serialised.
 *
 * Incremental: the caller keeps the bytes (a ByteQueue) and calls again with more. A line is judged
 * only once its LF has arrived (or the size limit has passed: 431), and lines are judged in order, so
 * a head cut at any point gives `need-more` or the same answer as the whole head. A `need-more`
 * carries a `resume` token: handing it back, with the same head object and the same bytes grown,
 * continues after the lines already judged and searches only new bytes for the next LF, so a client
 * sending one byte at a time costs linear time. Without it (0), or when the head object has parsed
 * anything else since (its token moved on), the parse starts again from `start`: sharing one head
 * object between connections can cost time, never skip a check.
 * @module
 */
import { CR, HTAB, LF, REASON, SP, TARGET, TOKEN, latin1 } from "./chars.ts";
import { FieldId, fieldId } from "./field-name.ts";
import { scanFieldLine } from "./field-line.ts";
import {
  TE_ANY, TE_LAST_CHUNKED, TE_OTHER, isPlainDigits, isValidHost, parseContentLength, scanConnection, scanTransferEncoding,
} from "./field-values.ts";
import { FieldAction, type HttpHead, type RequestHead, type ResponseHead } from "./head.ts";
import { E, INCOMPLETE, type HeadError, requestError, responseError } from "./reasons.ts";

/** The bytes end inside the head: call again with more, passing `resume` back. */
export interface NeedMore {
  readonly kind: "need-more";
  /** Hand this back with the same head object, the same start, and the same bytes with more after them. */
  readonly resume: number;
}

export type RequestHeadResult = RequestHead | NeedMore | HeadError;
export type ResponseHeadResult = ResponseHead | NeedMore | HeadError;

/**
 * Parse the request head at `bytes[start..]` into `head` (whose limits apply). `resume`: the value of
 * the last `need-more` for this message, or 0 to parse from the start.
 */
export function parseRequestHead(bytes: Uint8Array, start: number, head: RequestHead, resume = 0): RequestHeadResult {
  let r = parse(bytes, start, head, resume, true);
  if (r === INCOMPLETE) return { kind: "need-more", resume: head.resumeToken };
  head.resumeToken = 0; // a finished head cannot be resumed
  if (r >= 0) r = finishRequest(head, r, start);
  if (r >= 0) return head;
  return requestError(r);
}

/** Parse the response head at `bytes[start..]` into `head`; as parseRequestHead, refusals are 502. */
export function parseResponseHead(bytes: Uint8Array, start: number, head: ResponseHead, resume = 0): ResponseHeadResult {
  let r = parse(bytes, start, head, resume, false);
  if (r === INCOMPLETE) return { kind: "need-more", resume: head.resumeToken };
  head.resumeToken = 0; // a finished head cannot be resumed
  if (r >= 0) r = finishResponse(head, r, start);
  if (r >= 0) return head;
  return responseError(r);
}

/** Tokens handed out by need-more; a head object only resumes for the newest one it handed out. */
let lastToken = 0;

/** The start of the line the last start-line or field-section scan stopped in (synchronous: one slot). */
let stoppedLine = 0;

/**
 * Judge the head line by line: its end index (after the empty line), INCOMPLETE (state saved in
 * `head`), or a reason code. A line is judged only once its LF is here, so where the bytes were cut
 * never changes the answer; a problem in an unfinished line waits for its LF (or the size limit).
 */
function parse(bytes: Uint8Array, start: number, head: HttpHead, resume: number, isRequest: boolean): number {
  const end = Math.min(bytes.length, start + head.limits.maxHeaderBytes);
  const tooLarge = bytes.length > end;
  let line = start;
  let inFields = false;
  if (resume !== 0 && resume === head.resumeToken && start === head.resumeStart && bytes.length >= head.resumeLength) {
    // Lines before resumeLine were judged on these same bytes; only new bytes can hold the next LF.
    const lf = bytes.indexOf(LF, head.resumeSearched);
    if (lf < 0 || lf >= end) return pause(head, bytes, start, end, tooLarge, head.resumeLine, head.resumeInFields);
    head.bytes = bytes;
    line = head.resumeLine;
    inFields = head.resumeInFields;
  } else {
    head.reset(bytes);
  }
  if (!inFields) {
    const r = isRequest ? requestLine(bytes, line, end, head as RequestHead) : statusLine(bytes, line, end, head as ResponseHead);
    if (r < 0) return stopped(r, head, bytes, start, end, tooLarge, false);
    line = r;
  }
  const r = fieldSection(bytes, line, end, head, isRequest);
  return r < 0 ? stopped(r, head, bytes, start, end, tooLarge, true) : r;
}

/** A scan stopped in `stoppedLine`: refuse if that line is whole, else wait for the rest of it. */
function stopped(r: number, head: HttpHead, bytes: Uint8Array, start: number, end: number, tooLarge: boolean, inFields: boolean): number {
  if (r !== INCOMPLETE) {
    const lf = bytes.indexOf(LF, stoppedLine);
    if (lf >= 0 && lf < end) return r;
  }
  return pause(head, bytes, start, end, tooLarge, stoppedLine, inFields);
}

/** No LF in `bytes[line..end)`: 431 if bytes go on past the limit, else remember where to go on. */
function pause(head: HttpHead, bytes: Uint8Array, start: number, end: number, tooLarge: boolean, line: number, inFields: boolean): number {
  if (tooLarge) return E.header_too_large;
  head.resumeToken = lastToken = lastToken === 0x7fffffff ? 1 : lastToken + 1;
  head.resumeStart = start;
  head.resumeLength = bytes.length;
  head.resumeLine = line;
  head.resumeSearched = end;
  head.resumeInFields = inFields;
  return INCOMPLETE;
}

/**
 * Empty lines a server ignores (RFC 9112 §2.2: SHOULD ignore at least one CRLF), then
 * request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 §3), single spaces.
 * Returns the index after the line, INCOMPLETE, or a code.
 */
function requestLine(bytes: Uint8Array, p: number, end: number, head: RequestHead): number {
  for (;;) {
    stoppedLine = p;
    if (p >= end) return INCOMPLETE;
    if (bytes[p] !== CR) break;
    if (p + 1 >= end) return INCOMPLETE;
    if (bytes[p + 1] !== LF) return E.bare_cr;
    p += 2;
  }
  head.start = p;
  const m = p;
  while (p < end && TOKEN[bytes[p]!] === 1) p++;
  if (p === end) return INCOMPLETE;
  if (bytes[p] !== SP || p === m) return bytes[p] === LF ? E.bare_lf : E.invalid_method;
  head.method = methodName(bytes, m, p);
  const t = ++p;
  while (p < end && TARGET[bytes[p]!] === 1) p++;
  if (p === end) return INCOMPLETE;
  if (bytes[p] !== SP || p === t) {
    const c = bytes[p];
    return c === LF ? E.bare_lf : c === CR ? E.invalid_request_line : E.invalid_target;
  }
  head.targetStart = t;
  head.targetEnd = p;
  p++;
  const v = version(bytes, p, end);
  if (v < 0) return v;
  const cr = expectByte(bytes, p + 8, end, CR, E.invalid_version);
  if (cr < 0) return cr;
  if (p + 9 >= end) return INCOMPLETE;
  if (bytes[p + 9] !== LF) return E.bare_cr;
  head.minorVersion = v;
  head.startLineEnd = p + 10;
  const form = targetForm(bytes, head);
  return form < 0 ? form : head.startLineEnd;
}

/**
 * status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF (RFC 9112 §4). No empty lines
 * are skipped before it: that leniency is a server's (RFC 9112 §2.2).
 */
function statusLine(bytes: Uint8Array, p: number, end: number, head: ResponseHead): number {
  stoppedLine = p;
  head.start = p;
  const v = version(bytes, p, end);
  if (v < 0) return v;
  p += 8;
  const sp = expectByte(bytes, p, end, SP, E.invalid_status_line);
  if (sp < 0) return sp;
  let status = 0;
  for (let i = 1; i <= 3; i++) {
    if (p + i >= end) return INCOMPLETE;
    const d = bytes[p + i]! - 0x30;
    if (d < 0 || d > 9) return E.invalid_status;
    status = status * 10 + d;
  }
  if (status < 100 || status > 599) return E.invalid_status; // RFC 9110 §15: outside 100..599 is invalid
  // The space before the reason is required even when the reason is empty (RFC 9112 §4).
  const sp2 = expectByte(bytes, p + 4, end, SP, E.invalid_status_line);
  if (sp2 < 0) return sp2;
  p += 5;
  const rs = p;
  while (p < end && REASON[bytes[p]!] === 1) p++;
  if (p === end) return INCOMPLETE;
  if (bytes[p] !== CR) return bytes[p] === LF ? E.bare_lf : E.invalid_status_line;
  if (p + 1 === end) return INCOMPLETE;
  if (bytes[p + 1] !== LF) return E.bare_cr;
  head.minorVersion = v;
  head.status = status;
  head.reasonStart = rs;
  head.reasonEnd = p;
  head.startLineEnd = p + 2;
  return p + 2;
}

/** Rules over a whole request head, in a fixed order; `r` is its end index. */
function finishRequest(head: RequestHead, r: number, start: number): number {
  const te = head.transferEncoding;
  if (te !== 0) {
    if ((te & TE_ANY) === 0) return E.invalid_transfer_encoding; // a Transfer-Encoding with no coding
    if (head.minorVersion === 0) return E.transfer_encoding_in_http10; // RFC 9112 §6.1
    if (head.contentLength >= 0) return E.content_length_with_transfer_encoding; // RFC 9112 §6.1, §11.2
    if ((te & TE_LAST_CHUNKED) === 0) return E.chunked_not_last; // RFC 9112 §6.3 ¶4
    // A coding beside chunked (gzip, chunked) is relayed, never decoded here: not understood, so 501
    // (RFC 9112 §6.1 SHOULD), as HAProxy refuses it too (test/integration/http-differential.test.ts).
    if ((te & TE_OTHER) !== 0) return E.unknown_transfer_coding;
  }
  if (head.minorVersion === 1 && head.hostIndex < 0) return E.missing_host; // RFC 9112 §3.2
  // RFC 9112 §3.2.2: the target's authority wins over Host. Two different hosts in one request are
  // refused instead (as HAProxy does): a component behind that reads Host would route elsewhere.
  if (head.targetForm === "absolute" && head.hostIndex >= 0 && !authorityIsHost(head)) return E.host_mismatch;
  head.end = r;
  head.consumed = r - start;
  return r;
}

/** The absolute-form target's authority equals the Host value, ignoring case. */
function authorityIsHost(head: RequestHead): boolean {
  const b = head.bytes, i = head.hostIndex;
  const s = head.fields[4 * i + 2]!, e = head.fields[4 * i + 3]!;
  const a = head.authorityStart;
  if (e - s !== head.authorityEnd - a) return false;
  for (let k = 0; k < e - s; k++) if ((b[s + k]! | 0x20) !== (b[a + k]! | 0x20)) return false;
  return true;
}

/** Rules over a whole response head; the one repair is Content-Length beside Transfer-Encoding. */
function finishResponse(head: ResponseHead, r: number, start: number): number {
  const te = head.transferEncoding;
  if (te !== 0) {
    if ((te & TE_ANY) === 0) return E.invalid_transfer_encoding;
    if (head.minorVersion === 0) return E.transfer_encoding_in_http10; // RFC 9112 §6.1: "a server or client"
    if (head.contentLength >= 0) {
      // RFC 9112 §6.3 ¶3: Transfer-Encoding overrides; a proxy MUST remove Content-Length before forwarding.
      for (let i = head.indexOfId(FieldId.CONTENT_LENGTH); i >= 0; i = head.indexOfId(FieldId.CONTENT_LENGTH, i + 1)) {
        head.actions[i] = FieldAction.DROP;
      }
      head.contentLength = -1;
      head.clean = false;
    }
  }
  head.end = r;
  head.consumed = r - start;
  return r;
}

/**
 * HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3, case-sensitive) at `p`: the minor version
 * (0 or 1), `unsupported_version` for another well-formed one (RFC 9110 §15.6.6: 505), INCOMPLETE, or
 * `invalid_version`. Each byte is judged as soon as it is here, so INCOMPLETE means the bytes so far
 * are a prefix of a version (no LF among them): the invariant resumption relies on.
 */
function version(bytes: Uint8Array, p: number, end: number): number {
  for (let i = 0; i < 8; i++) {
    if (p + i >= end) return INCOMPLETE;
    const b = bytes[p + i]!;
    const ok = i === 5 || i === 7 ? b >= 0x30 && b <= 0x39 : b === HTTP_SLASH_DOT[i];
    if (!ok) return E.invalid_version;
  }
  const major = bytes[p + 5]! - 0x30, minor = bytes[p + 7]! - 0x30;
  if (major !== 1 || minor > 1) return E.unsupported_version;
  return minor;
}

/** "HTTP/" then a digit, ".", a digit (positions 5 and 7 are checked as digits). */
const HTTP_SLASH_DOT = [0x48, 0x54, 0x54, 0x50, 0x2f, 0, 0x2e, 0];

/** The byte at `i` is `want`, INCOMPLETE when it has not arrived, else `reason` (or bare_lf for an LF). */
function expectByte(bytes: Uint8Array, i: number, end: number, want: number, reason: number): number {
  if (i >= end) return INCOMPLETE;
  const b = bytes[i];
  return b === want ? 0 : b === LF ? E.bare_lf : reason;
}

/**
 * Classify and check the request-target against the method (RFC 9112 §3.2): origin-form `/…`;
 * asterisk-form `*` only for OPTIONS; authority-form `host:port` only (and always) for CONNECT;
 * absolute-form `scheme://authority…`, whose authority replaces Host (so the head is not clean: the
 * serializer writes Host from it). Returns 0 or `invalid_target`.
 */
function targetForm(bytes: Uint8Array, head: RequestHead): number {
  const s = head.targetStart, e = head.targetEnd;
  if (head.method === "CONNECT") {
    // authority-form = uri-host ":" port, port required (RFC 9112 §3.2.3).
    let colon = e - 1;
    while (colon > s && bytes[colon]! >= 0x30 && bytes[colon]! <= 0x39) colon--;
    if (bytes[colon] !== 0x3a || colon === e - 1 || colon === s || !isValidHost(bytes, s, e)) return E.invalid_target;
    head.targetForm = "authority";
    head.authorityStart = s;
    head.authorityEnd = e;
    return 0;
  }
  if (bytes[s] === 0x2f) { head.targetForm = "origin"; return 0; }
  if (e - s === 1 && bytes[s] === 0x2a) {
    if (head.method !== "OPTIONS") return E.invalid_target;
    head.targetForm = "asterisk";
    return 0;
  }
  // absolute-URI: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 §3.1), then "://".
  let p = s;
  if (!isAlpha(bytes[p]!)) return E.invalid_target;
  while (p < e && (isAlpha(bytes[p]!) || (bytes[p]! >= 0x30 && bytes[p]! <= 0x39) || bytes[p] === 0x2b || bytes[p] === 0x2d || bytes[p] === 0x2e)) p++;
  if (e - p < 3 || bytes[p] !== 0x3a || bytes[p + 1] !== 0x2f || bytes[p + 2] !== 0x2f) return E.invalid_target;
  const a = p + 3;
  p = a;
  while (p < e && bytes[p] !== 0x2f && bytes[p] !== 0x3f && bytes[p] !== 0x23) p++;
  // An empty host is invalid in an http(s) URI (RFC 9110 §4.2.1); userinfo is refused (§4.2.4).
  if (p === a || !isValidHost(bytes, a, p)) return E.invalid_target;
  head.targetForm = "absolute";
  head.authorityStart = a;
  head.authorityEnd = p;
  head.clean = false;
  return 0;
}

function isAlpha(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

/**
 * The field lines from `p` (after those already judged: `head.count`) to the empty line: the index
 * after it, INCOMPLETE, or a reason code. Each field the framing layer acts on is checked as it is
 * met, so the first problem in byte order wins.
 */
function fieldSection(bytes: Uint8Array, p: number, end: number, head: HttpHead, isRequest: boolean): number {
  const fields = head.fields;
  const max = head.limits.maxHeaders;
  for (;;) {
    stoppedLine = p;
    if (p >= end) return INCOMPLETE;
    const c = bytes[p]!;
    if (c === LF) return E.bare_lf;
    if (c === CR) {
      if (p + 1 >= end) return INCOMPLETE;
      return bytes[p + 1] === LF ? p + 2 : E.bare_cr;
    }
    // RFC 9112 §2.2 (before the first field) and §5.2 (obs-fold): a recipient MUST reject or repair.
    if (c === SP || c === HTAB) return head.count === 0 ? E.whitespace_after_start_line : E.obs_fold;
    const count = head.count;
    if (count === max) return E.too_many_headers;
    const slot = 4 * count;
    const r = scanFieldLine(bytes, p, end, fields, slot, !isRequest);
    if (r < 0) return r;
    const nameEnd = fields[slot + 1]!;
    const id = fieldId(bytes, p, nameEnd);
    let action: number = FieldAction.KEEP;
    if (bytes[nameEnd] !== 0x3a) { action = FieldAction.NORMALIZE; head.clean = false; }
    if (id !== FieldId.OTHER) {
      const vs = fields[slot + 2]!, ve = fields[slot + 3]!;
      switch (id) {
        case FieldId.HOST:
          if (isRequest) {
            const request = head as RequestHead;
            if (request.hostIndex >= 0) return E.multiple_host; // RFC 9112 §3.2
            if (!isValidHost(bytes, vs, ve)) return E.invalid_host;
            request.hostIndex = count;
          }
          break;
        case FieldId.CONTENT_LENGTH: {
          const n = parseContentLength(bytes, vs, ve);
          if (n < 0) return n;
          if (head.contentLength >= 0) {
            // RFC 9110 §8.6: a repeated identical value MAY be refused or taken as one. Taken: it is
            // what a processor that combined duplicate lines sends (some upstreams do), it is not
            // ambiguous (every reading gives the same length), and the head is re-serialised with one
            // Content-Length, so no next hop ever sees the duplicate. Differing values are refused.
            if (n !== head.contentLength) return E.conflicting_content_length;
            action = FieldAction.DROP;
            head.clean = false;
          } else {
            head.contentLength = n;
            if (!isPlainDigits(bytes, vs, ve)) { action = FieldAction.CONTENT_LENGTH; head.clean = false; }
          }
          break;
        }
        case FieldId.TRANSFER_ENCODING: {
          const te = scanTransferEncoding(bytes, vs, ve, head.transferEncoding, isRequest);
          if (te < 0) return te;
          head.transferEncoding = te;
          break;
        }
        case FieldId.CONNECTION: {
          const bits = scanConnection(bytes, vs, ve);
          if (bits < 0) return bits;
          head.connection |= bits;
          break;
        }
      }
    }
    head.ids[count] = id;
    head.actions[count] = action;
    head.count = count + 1;
    p = r;
  }
}

// Shared strings for the registered methods clients send most (RFC 9110 §9.3, RFC 5789): no decoding.
const METHODS: readonly string[] = ["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"];

function methodName(bytes: Uint8Array, s: number, e: number): string {
  outer: for (let m = 0; m < METHODS.length; m++) {
    const name = METHODS[m]!;
    if (name.length !== e - s) continue;
    for (let i = 0; i < name.length; i++) if (bytes[s + i] !== name.charCodeAt(i)) continue outer;
    return name;
  }
  return latin1(bytes, s, e);
}

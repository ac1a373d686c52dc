/**
 * A parsed HTTP/1.1 message head, kept as offsets into the bytes it was parsed from (RFC 9112 §2.1:
 * start-line, field lines, empty line). One object is reused for message after message: the field
 * offsets live in one Int32Array sized by the caller's header-count limit, so parsing allocates no
 * object per field, and strings are made only when an accessor asks for them.
 *
 * Lifetime: the offsets and accessors refer to the bytes given to the parser; they stay valid until
 * the object is passed to the parser again, as long as the caller does not change those bytes.
 * @module
 */
import { COMMA, HTAB, LOWER, SP, TOKEN, equalsLower, latin1 } from "./chars.ts";
import { FieldId } from "./field-name.ts";
import { CONN_CLOSE, CONN_KEEP_ALIVE, CONN_UPGRADE, TE_ANY, TE_LAST_CHUNKED } from "./field-values.ts";

/** Bounds set by the listener's configuration. */
export interface HeadLimits {
  /** Most bytes a head may take, start line and final empty line included (over it: 431). */
  readonly maxHeaderBytes: number;
  /** Most field lines in a head (over it: 431). */
  readonly maxHeaders: number;
}

/** What a field line needs before it is forwarded (set by the parser, read by the serializer). */
export const FieldAction = {
  /** Forward the line as received. */
  KEEP: 0,
  /** Write `name: value` from the offsets (a response's whitespace before the colon is removed, RFC 9112 §5.1). */
  NORMALIZE: 1,
  /** Write the merged Content-Length once (RFC 9110 §8.6). */
  CONTENT_LENGTH: 2,
  /** Leave out (a repeated Content-Length; a response's Content-Length beside Transfer-Encoding, RFC 9112 §6.3 ¶3). */
  DROP: 3,
} as const;

const EMPTY = new Uint8Array(0);

/** Fields shared by request and response heads. */
export abstract class HttpHead {
  readonly kind = "head" as const;
  /** The bytes the head was parsed from. */
  bytes: Uint8Array = EMPTY;
  /** Index of the start line's first byte (after empty lines a server ignores, RFC 9112 §2.2). */
  start = 0;
  /** Index after the start line's CRLF. */
  startLineEnd = 0;
  /** Index after the empty line that ends the head: the body, or the next message, starts here. */
  end = 0;
  /** `end` minus the offset the caller started from: how many bytes to consume for this head. */
  consumed = 0;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minorVersion = 1;
  /** Number of field lines. */
  count = 0;
  /** Per field line i: name start, name end, value start, value end (OWS trimmed) at 4i..4i+3. */
  readonly fields: Int32Array;
  /** Per field line: its FieldId. */
  readonly ids: Uint8Array;
  /** Per field line: its FieldAction. */
  readonly actions: Uint8Array;
  /** Connection options seen (CONN_* bits of field-values.ts). */
  connection = 0;
  /** Transfer-Encoding state (TE_* bits of field-values.ts); 0 when absent. */
  transferEncoding = 0;
  /** The Content-Length value, -1 when absent (or dropped because Transfer-Encoding overrides it). */
  contentLength = -1;
  /**
   * True when bytes `start..end` need no edit for framing: every line can be forwarded as received.
   * Hop-by-hop fields and the caller's edits are a separate matter (see serialize.ts).
   */
  clean = true;

  /**
   * Where an unfinished head stopped (see parse-head.ts): valid only for the `need-more` that handed
   * out `resumeToken`, for the same `start`, and bytes at least `resumeLength` long.
   */
  resumeToken = 0;
  resumeStart = 0;
  resumeLength = 0;
  /** The first line not judged yet, and how far the search for its LF has gone. */
  resumeLine = 0;
  resumeSearched = 0;
  /** Whether the start line was judged already. */
  resumeInFields = false;

  constructor(readonly limits: HeadLimits) {
    this.fields = new Int32Array(limits.maxHeaders * 4);
    this.ids = new Uint8Array(limits.maxHeaders);
    this.actions = new Uint8Array(limits.maxHeaders);
  }

  /** Forget the previous message (called by the parser). */
  reset(bytes: Uint8Array): void {
    this.bytes = bytes;
    this.resumeToken = 0;
    this.count = 0;
    this.connection = 0;
    this.transferEncoding = 0;
    this.contentLength = -1;
    this.clean = true;
  }

  /** The body is chunked: Transfer-Encoding is present and chunked is its final coding. */
  get chunked(): boolean {
    return (this.transferEncoding & TE_LAST_CHUNKED) !== 0;
  }

  get hasTransferEncoding(): boolean {
    return (this.transferEncoding & TE_ANY) !== 0;
  }

  /**
   * The connection persists after this message (RFC 9112 §9.3): HTTP/1.1 unless `close`; HTTP/1.0
   * only with `keep-alive` (and no `close`).
   */
  get keepAlive(): boolean {
    if ((this.connection & CONN_CLOSE) !== 0) return false;
    return this.minorVersion === 1 || (this.connection & CONN_KEEP_ALIVE) !== 0;
  }

  /** An Upgrade field with the `upgrade` connection option, as RFC 9110 §7.8 requires for it to count. */
  get isUpgrade(): boolean {
    return (this.connection & CONN_UPGRADE) !== 0 && this.indexOfId(FieldId.UPGRADE) >= 0;
  }

  /** Index of the first field line with this id at or after `from`, or -1. */
  indexOfId(id: FieldId, from = 0): number {
    for (let i = from; i < this.count; i++) if (this.ids[i] === id) return i;
    return -1;
  }

  /** Index of the first field named `name` (lower-case) at or after `from`, or -1. */
  indexOf(name: string, from = 0): number {
    const f = this.fields;
    for (let i = from; i < this.count; i++) if (equalsLower(this.bytes, f[4 * i]!, f[4 * i + 1]!, name)) return i;
    return -1;
  }

  /** Field i's name, as received. */
  name(i: number): string {
    return latin1(this.bytes, this.fields[4 * i]!, this.fields[4 * i + 1]!);
  }

  /** Field i's value, OWS trimmed. */
  value(i: number): string {
    return latin1(this.bytes, this.fields[4 * i + 2]!, this.fields[4 * i + 3]!);
  }

  /**
   * The value of the field `name` (lower-case), its lines joined with ", " (RFC 9110 §5.3), or null.
   * Set-Cookie is the one field that cannot be joined: read its lines with indexOf and value.
   */
  get(name: string): string | null {
    let i = this.indexOf(name);
    if (i < 0) return null;
    let out = this.value(i);
    while ((i = this.indexOf(name, i + 1)) >= 0) out += ", " + this.value(i);
    return out;
  }

  /** True when a Connection field lists `option` (lower-case). */
  connectionHas(option: string): boolean {
    for (let i = this.indexOfId(FieldId.CONNECTION); i >= 0; i = this.indexOfId(FieldId.CONNECTION, i + 1)) {
      if (this.listHas(i, 0, 0, option)) return true;
    }
    return false;
  }

  /** True when a Connection option names field i (so field i is hop-by-hop, RFC 9110 §7.6.1). */
  namedByConnection(i: number): boolean {
    const f = this.fields;
    for (let c = this.indexOfId(FieldId.CONNECTION); c >= 0; c = this.indexOfId(FieldId.CONNECTION, c + 1)) {
      if (this.listHas(c, f[4 * i]!, f[4 * i + 1]!, null)) return true;
    }
    return false;
  }

  /** Whether the token list in field `c` holds `option`, or (option null) the bytes `s..e`, ignoring case. */
  private listHas(c: number, s: number, e: number, option: string | null): boolean {
    const f = this.fields, bytes = this.bytes;
    let p = f[4 * c + 2]!;
    const end = f[4 * c + 3]!;
    while (p < end) {
      while (p < end && (bytes[p] === COMMA || bytes[p] === SP || bytes[p] === HTAB)) p++;
      const t = p;
      while (p < end && TOKEN[bytes[p]!] === 1) p++;
      if (p > t) {
        if (option !== null ? equalsLower(bytes, t, p, option) : sameIgnoringCase(bytes, t, p, s, e)) return true;
      }
      if (p === t) p++;
    }
    return false;
  }
}

function sameIgnoringCase(bytes: Uint8Array, a: number, aEnd: number, b: number, bEnd: number): boolean {
  if (aEnd - a !== bEnd - b) return false;
  for (let i = 0; i < aEnd - a; i++) if (LOWER[bytes[a + i]!] !== LOWER[bytes[b + i]!]) return false;
  return true;
}

/** Bytes `s..e` are `str`, one char per byte (the inverse of latin1). */
function sameAsString(bytes: Uint8Array, s: number, e: number, str: string): boolean {
  if (e - s !== str.length) return false;
  for (let i = 0; i < str.length; i++) if (bytes[s + i] !== str.charCodeAt(i)) return false;
  return true;
}

/** The forms of request-target (RFC 9112 §3.2). */
export type TargetForm = "origin" | "absolute" | "authority" | "asterisk";

export class RequestHead extends HttpHead {
  /** The method, case-sensitive (RFC 9110 §9.1); common ones are shared strings, not decoded. */
  method = "";
  targetStart = 0;
  targetEnd = 0;
  targetForm: TargetForm = "origin";
  /** The authority inside an absolute-form target (RFC 9112 §3.2.2), or the whole authority-form target. */
  authorityStart = 0;
  authorityEnd = 0;
  /** Index of the Host field line, -1 when absent. */
  hostIndex = -1;

  override reset(bytes: Uint8Array): void {
    super.reset(bytes);
    this.hostIndex = -1;
    this.authorityStart = this.authorityEnd = 0;
  }

  /**
   * Whether host() would return `previous` (compared on the bytes, nothing decoded): a keep-alive
   * client sends the same Host request after request.
   */
  hostIs(previous: string): boolean {
    if (this.authorityEnd > this.authorityStart) return sameAsString(this.bytes, this.authorityStart, this.authorityEnd, previous);
    if (this.hostIndex < 0) return previous === "";
    return sameAsString(this.bytes, this.fields[4 * this.hostIndex + 2]!, this.fields[4 * this.hostIndex + 3]!, previous);
  }

  /** Whether path() would return `previous` (origin-form compared on the bytes; other forms: false). */
  pathIs(previous: string): boolean {
    return this.targetForm === "origin" && sameAsString(this.bytes, this.targetStart, this.targetEnd, previous);
  }

  /** The request-target as received. */
  target(): string {
    return latin1(this.bytes, this.targetStart, this.targetEnd);
  }

  /**
   * The host the request is for: an absolute-form or authority-form target's authority (a proxy MUST
   * use it and ignore Host, RFC 9112 §3.2.2), else the Host value; "" when there is none (HTTP/1.0).
   * As received: port and case are the router's business.
   */
  host(): string {
    if (this.authorityEnd > this.authorityStart) return latin1(this.bytes, this.authorityStart, this.authorityEnd);
    return this.hostIndex < 0 ? "" : this.value(this.hostIndex);
  }

  /**
   * Path and query: the origin-form target; for absolute-form the part after the authority, with the
   * "/" an empty path stands for (RFC 9112 §3.2.1); asterisk- and authority-form as received.
   */
  path(): string {
    if (this.targetForm !== "absolute") return this.target();
    const rest = latin1(this.bytes, this.authorityEnd, this.targetEnd);
    return rest.charCodeAt(0) === 0x2f ? rest : "/" + rest;
  }
}

export class ResponseHead extends HttpHead {
  /** The status code, 100..599. */
  status = 0;
  reasonStart = 0;
  reasonEnd = 0;

  /** The reason phrase (RFC 9112 §4: a client SHOULD ignore it; kept for logs). */
  reason(): string {
    return latin1(this.bytes, this.reasonStart, this.reasonEnd);
  }
}

/**
 * Writes a parsed head back for the next hop: the start line and every field line that goes on, less
 * hop-by-hop fields (hop-by-hop.ts) and the caller's removals, plus the caller's fields. Only
 * validated bytes are written ("anything not clean is re-serialised"): lines the parser marked are
 * rewritten from their offsets (FieldAction), the rest are copied as received, in runs. A head with
 * nothing to change comes back as a view of the received bytes, without a copy.
 *
 * Framing goes on as received, because the body is relayed as received: Transfer-Encoding (hop-by-hop
 * in principle, but a chunked body forwarded byte for byte is still chunked, with the same codings)
 * and Content-Length stay, whatever the edits say; a merged Content-Length is written once, and a
 * response's Content-Length beside Transfer-Encoding is left out (RFC 9112 §6.3 ¶3). For an
 * absolute-form request, Host is written from the target's authority (RFC 9112 §3.2.2). Host is
 * never removed by `remove` (an HTTP/1.1 request without one is invalid); `set` replaces it.
 * @module
 */
import { CR, FIELD_VALUE, LF, TOKEN, equalsIgnoringCase } from "./chars.ts";
import { FieldId } from "./field-name.ts";
import { FieldAction, type HttpHead, RequestHead } from "./head.ts";
import { isHopByHop } from "./hop-by-hop.ts";
import { copyRange } from "./copy-range.ts";

export type FieldEdit = readonly [name: string, value: string];

export interface HeadEdits {
  /** Names (any case) of received fields to leave out, e.g. a route's `headers.request.remove`. */
  readonly remove?: readonly string[];
  /** Fields to write, each replacing every received field of its name (X-Forwarded-For, a route's `set`). */
  readonly set?: readonly FieldEdit[];
  /** Fields to write beside received ones of the same name (Via; X-Forwarded-For when appending). */
  readonly add?: readonly FieldEdit[];
  /**
   * Forward as an upgrade (a request the upstream may switch, or the 101 answering it): Upgrade goes
   * on, with `Connection: upgrade` (RFC 9110 §7.8). Only when the head is one (`isUpgrade`).
   */
  readonly upgrade?: boolean;
}

const NO_EDITS: HeadEdits = {};
const CONTENT_LENGTH = "Content-Length: ";
const CONNECTION_UPGRADE = "Connection: upgrade\r\n";
const HOST = "Host: ";

/** Per field line: what to write (a FieldAction). Grown as needed; serializeHead runs to its end synchronously. */
let plan = new Uint8Array(128);

/** The head as the next hop gets it. */
export function serializeHead(head: HttpHead, edits: HeadEdits = NO_EDITS): Uint8Array {
  const size = planHead(head, edits);
  if (size < 0) return head.bytes.subarray(head.start, head.end);
  const out = new Uint8Array(compacts ? Math.max(size, head.end - head.start) : size);
  const at = writePlanned(out, 0, head, edits);
  return at === out.length ? out : out.subarray(0, at);
}

/**
 * The same bytes written into `out` from `at` (a caller's reusable buffer: no allocation, and body
 * bytes can follow the head in one write). Returns the index after the head, or -1 (nothing written)
 * when `out` lacks room from `at` for the head as written or, when lines are only left out (compacted
 * in place), for the head as received.
 */
export function serializeHeadInto(head: HttpHead, edits: HeadEdits, out: Uint8Array, at: number): number {
  const size = planHead(head, edits);
  if (size < 0) {
    const n = head.end - head.start;
    if (at + n > out.length) return -1;
    return copyRange(out, at, head.bytes, head.start, head.end);
  }
  if (at + (compacts ? Math.max(size, head.end - head.start) : size) > out.length) return -1;
  return writePlanned(out, at, head, edits);
}

/**
 * The head rewritten inside its own bytes, moved up so that it still ends at `head.end` (right before
 * the body that follows it in the same chunk, which can then leave with it in one write, no copy):
 * possible when the edits only leave lines out (hop-by-hop fields, a response's repeated
 * Content-Length), as for a response to an HTTP/1.1 client. Returns the head's new start, or -1 when
 * the edits need more (then nothing was changed). Overwrites the dropped lines' bytes: only for bytes
 * the caller owns and does not read again as they were.
 */
export function compactInPlace(head: HttpHead, edits: HeadEdits): number {
  const size = planHead(head, edits);
  if (size < 0) return head.start;
  const set = edits.set, add = edits.add;
  if (!compacts || (set !== undefined && set.length > 0) || (add !== undefined && add.length > 0) || (edits.upgrade === true && head.isUpgrade)) return -1;
  // From the last run of kept lines to the first, each moved up (never down): a run's destination is
  // past the end of every run before it, so nothing not yet moved is overwritten.
  const bytes = head.bytes;
  let to = head.end - 2; // the empty line stays where it is
  let runEnd = -1;
  for (let i = head.count - 1; i >= -1; i--) {
    if (i >= 0 && plan[i] === FieldAction.KEEP) {
      if (runEnd < 0) runEnd = lineStartOrEnd(head, i + 1);
      continue;
    }
    if (runEnd >= 0) {
      const runStart = lineStartOrEnd(head, i + 1);
      to -= runEnd - runStart;
      if (to !== runStart) bytes.copyWithin(to, runStart, runEnd);
      runEnd = -1;
    }
  }
  const line = head.startLineEnd - head.start;
  to -= line;
  if (to !== head.start) bytes.copyWithin(to, head.start, head.startLineEnd);
  return to;
}

/** Whether the last planHead can compact (every line kept as received or left out): set by planHead. */
let compacts = false;

/**
 * Decide each line's fate into `plan` (synchronously consumed by writePlanned): the size of the head
 * to write, or -1 when nothing changes (the received bytes go on as they are).
 */
function planHead(head: HttpHead, edits: HeadEdits): number {
  const bytes = head.bytes;
  const f = head.fields;
  const count = head.count;
  if (plan.length < count) plan = new Uint8Array(Math.max(count, plan.length * 2));
  const upgrade = edits.upgrade === true && head.isUpgrade;
  const absoluteHost = head instanceof RequestHead && head.targetForm === "absolute" && !named(edits.set, "host");
  const remove = edits.remove, set = edits.set, add = edits.add;

  let size = head.startLineEnd - head.start + 2;
  let changed = absoluteHost || upgrade || (set !== undefined && set.length > 0) || (add !== undefined && add.length > 0);
  let onlyDrops = !absoluteHost; // every line kept as received or left out: the head can be compacted in place
  for (let i = 0; i < count; i++) {
    let action: number = head.actions[i]!;
    const id = head.ids[i];
    if (action !== FieldAction.DROP && id !== FieldId.TRANSFER_ENCODING && id !== FieldId.CONTENT_LENGTH) {
      const ns = f[4 * i]!, ne = f[4 * i + 1]!;
      if (
        isHopByHop(head, i, upgrade) || hasName(set, bytes, ns, ne) ||
        (id === FieldId.HOST ? absoluteHost : has(remove, bytes, ns, ne))
      ) action = FieldAction.DROP;
    }
    plan[i] = action;
    if (action !== FieldAction.KEEP) changed = true;
    if (action === FieldAction.NORMALIZE || action === FieldAction.CONTENT_LENGTH) onlyDrops = false;
    if (action === FieldAction.KEEP) size += lineStartOrEnd(head, i + 1) - f[4 * i]!;
    else if (action === FieldAction.NORMALIZE) size += f[4 * i + 1]! - f[4 * i]! + 2 + f[4 * i + 3]! - f[4 * i + 2]! + 2;
    else if (action === FieldAction.CONTENT_LENGTH) size += CONTENT_LENGTH.length + String(head.contentLength).length + 2;
  }
  if (!changed) return -1;
  if (absoluteHost) size += HOST.length + (head as RequestHead).host().length + 2;
  if (upgrade) size += CONNECTION_UPGRADE.length;
  if (set !== undefined) for (let k = 0; k < set.length; k++) size += editLength(set[k]![0], set[k]![1], false);
  if (add !== undefined) for (let k = 0; k < add.length; k++) size += editLength(add[k]![0], add[k]![1], true);
  compacts = onlyDrops;
  return size;
}

/** Write the head planHead just planned into `out` from `at` (room checked by the caller); the index after it. */
function writePlanned(out: Uint8Array, at: number, head: HttpHead, edits: HeadEdits): number {
  const upgrade = edits.upgrade === true && head.isUpgrade;
  const host = !compacts && head instanceof RequestHead && head.targetForm === "absolute" && !named(edits.set, "host") ? head.host() : null;
  const set = edits.set, add = edits.add;
  at = compacts ? compactInto(out, at, head) : rewriteInto(out, at, head, host);
  if (upgrade) at = writeAscii(out, at, CONNECTION_UPGRADE);
  if (set !== undefined) for (let k = 0; k < set.length; k++) at = writeField(out, at, set[k]![0], set[k]![1]);
  if (add !== undefined) for (let k = 0; k < add.length; k++) at = writeField(out, at, add[k]![0], add[k]![1]);
  out[at++] = CR;
  out[at++] = LF;
  return at;
}

/**
 * Every line kept as received or left out (the common case: hop-by-hop fields dropped, fields
 * appended): one copy of the head into `out`, then each run of kept lines moved down over the dropped
 * ones, never up, so nothing unread is overwritten. Returns where the appended fields go.
 */
function compactInto(out: Uint8Array, to: number, head: HttpHead): number {
  const bytes = head.bytes, f = head.fields, base = head.start, count = head.count;
  copyRange(out, to, bytes, base, head.end);
  const shift = to - base; // out[i + shift] holds bytes[i]
  let at = head.startLineEnd + shift;
  let runStart = -1;
  for (let i = 0; i <= count; i++) {
    if (i < count && plan[i] === FieldAction.KEEP) {
      if (runStart < 0) runStart = f[4 * i]! + shift;
      continue;
    }
    if (runStart >= 0) {
      const runEnd = lineStartOrEnd(head, i) + shift;
      if (runStart !== at) out.copyWithin(at, runStart, runEnd);
      at += runEnd - runStart;
      runStart = -1;
    }
  }
  return at;
}

/** Some lines rewritten from their offsets (FieldAction), and Host when `host` is given. Returns where the appended fields go. */
function rewriteInto(out: Uint8Array, to: number, head: HttpHead, host: string | null): number {
  const bytes = head.bytes, f = head.fields, count = head.count;
  copyRange(out, to, bytes, head.start, head.startLineEnd);
  let at = to + head.startLineEnd - head.start;
  if (host !== null) at = writeField(out, at, "Host", host);
  let runStart = -1; // the first line of a run of KEEP lines, copied in one go
  for (let i = 0; i <= count; i++) {
    const action = i < count ? plan[i] : -1;
    if (action === FieldAction.KEEP) {
      if (runStart < 0) runStart = f[4 * i]!;
      continue;
    }
    if (runStart >= 0) {
      const runEnd = lineStartOrEnd(head, i);
      at = copyRange(out, at, bytes, runStart, runEnd);
      runStart = -1;
    }
    if (action === FieldAction.NORMALIZE) {
      at = copy(out, at, bytes, f[4 * i]!, f[4 * i + 1]!);
      out[at++] = 0x3a;
      out[at++] = 0x20;
      at = copy(out, at, bytes, f[4 * i + 2]!, f[4 * i + 3]!);
      out[at++] = CR;
      out[at++] = LF;
    } else if (action === FieldAction.CONTENT_LENGTH) {
      at = writeAscii(out, at, CONTENT_LENGTH);
      at = writeAscii(out, at, String(head.contentLength));
      out[at++] = CR;
      out[at++] = LF;
    }
  }
  return at;
}

/** Where field line i starts, or for i = count where the field lines end (the empty line). */
function lineStartOrEnd(head: HttpHead, i: number): number {
  return i < head.count ? head.fields[4 * i]! : head.end - 2;
}

function has(names: readonly string[] | undefined, bytes: Uint8Array, s: number, e: number): boolean {
  if (names === undefined) return false;
  for (let k = 0; k < names.length; k++) if (equalsIgnoringCase(bytes, s, e, names[k]!)) return true;
  return false;
}

function hasName(fields: readonly FieldEdit[] | undefined, bytes: Uint8Array, s: number, e: number): boolean {
  if (fields === undefined) return false;
  for (let k = 0; k < fields.length; k++) if (equalsIgnoringCase(bytes, s, e, fields[k]![0])) return true;
  return false;
}

function named(fields: readonly FieldEdit[] | undefined, lowerName: string): boolean {
  if (fields === undefined) return false;
  for (let k = 0; k < fields.length; k++) if (sameName(fields[k]![0], lowerName)) return true;
  return false;
}

/** `name` in any case equals the lower-case `lowerName`. */
function sameName(name: string, lowerName: string): boolean {
  if (name.length !== lowerName.length) return false;
  for (let i = 0; i < name.length; i++) if ((name.charCodeAt(i) | 0x20) !== (lowerName.charCodeAt(i) | 0x20)) return false;
  return true;
}

/**
 * Bytes of `name: value CRLF`. Edits come from configuration and from values the proxy computed, never
 * raw from a peer; a name that is not a token or a value with CR, LF or another CTL would let them
 * inject lines, and a framing field would contradict the body as relayed, so those throw (RFC 9110
 * §5.1, §5.5; configuration checks them first with isEditableField). A second Host cannot be added.
 */
function editLength(name: string, value: string, adding: boolean): number {
  if (!isEditableField(name) || (adding && sameName(name, "host"))) throw new TypeError(`not an editable HTTP field name: ${JSON.stringify(name)}`);
  if (!isFieldValue(value)) throw new TypeError(`not an HTTP field value for ${name}: ${JSON.stringify(value)}`);
  return name.length + 2 + value.length + 2;
}

/** A field name a route may set or add: a token, not a framing field (Content-Length, Transfer-Encoding). */
export function isEditableField(name: string): boolean {
  return isFieldName(name) && !sameName(name, "content-length") && !sameName(name, "transfer-encoding");
}

/** A token (RFC 9110 §5.1): what configuration should check a field name with. */
export function isFieldName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 0xff || TOKEN[c] !== 1) return false;
  }
  return true;
}

/** Field-vchar, SP and HTAB, one char per byte (RFC 9110 §5.5). */
export function isFieldValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c > 0xff || FIELD_VALUE[c] !== 1) return false;
  }
  return true;
}

function writeField(out: Uint8Array, at: number, name: string, value: string): number {
  at = writeAscii(out, at, name);
  out[at++] = 0x3a;
  out[at++] = 0x20;
  at = writeAscii(out, at, value);
  out[at++] = CR;
  out[at++] = LF;
  return at;
}

/** One byte per char (latin1: the inverse of the parser's decoding); chars were checked to be < 256. */
function writeAscii(out: Uint8Array, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) out[at++] = s.charCodeAt(i);
  return at;
}

function copy(out: Uint8Array, at: number, bytes: Uint8Array, s: number, e: number): number {
  return copyRange(out, at, bytes, s, e);
}

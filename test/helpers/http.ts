/**
 * Feeding the HTTP framing layer the way a connection does (whole, one byte at a time, cut at a given
 * point) and snapshots of its results that can be compared with toEqual. Shared by the http-* unit
 * tests and bench/fuzz/http.ts.
 */
import { ChunkedFramer, type ChunkedResult } from "../../src/http/chunked.ts";
import { type HttpHead, RequestHead, ResponseHead } from "../../src/http/head.ts";
import { type NeedMore, parseRequestHead, parseResponseHead } from "../../src/http/parse-head.ts";
import type { HeadError } from "../../src/http/reasons.ts";

export const enc = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "latin1"));
export const LIMITS = { maxHeaderBytes: 65536, maxHeaders: 100 };

export type HeadSnapshot =
  | { kind: "need-more" }
  | { kind: "error"; reason: string; status: number }
  | {
    kind: "head"; consumed: number; start: number; end: number; startLine: string; clean: boolean;
    contentLength: number; transferEncoding: number; connection: number;
    fields: [string, string, number][];
  };

/** A comparable copy of a parse result (the head object is reused, so it must be copied). */
export function snapshot(r: HttpHead | NeedMore | HeadError): HeadSnapshot {
  if (r.kind === "need-more") return { kind: "need-more" };
  if (r.kind === "error") return { kind: "error", reason: r.reason, status: r.status };
  const fields: [string, string, number][] = [];
  for (let i = 0; i < r.count; i++) fields.push([r.name(i), r.value(i), r.actions[i]!]);
  return {
    kind: "head", consumed: r.consumed, start: r.start, end: r.end, clean: r.clean,
    startLine: Buffer.from(r.bytes.subarray(r.start, r.startLineEnd)).toString("latin1"),
    contentLength: r.contentLength, transferEncoding: r.transferEncoding, connection: r.connection, fields,
  };
}

type Side = "request" | "response";

function parser(side: Side, limits = LIMITS) {
  const head = side === "request" ? new RequestHead(limits) : new ResponseHead(limits);
  return (bytes: Uint8Array, resume: number) =>
    side === "request" ? parseRequestHead(bytes, 0, head as RequestHead, resume) : parseResponseHead(bytes, 0, head as ResponseHead, resume);
}

/**
 * Parse `bytes` as delivered in pieces ending at each of `cuts` (ascending), then whole: the caller
 * calls again with everything so far (a new array, as ByteQueue.bytes() makes) and the `resume` of
 * the last need-more. Returns the first answer that is not need-more (a head can come before the last
 * piece when a body follows).
 */
export function parseInPieces(side: Side, bytes: Uint8Array, cuts: readonly number[], limits = LIMITS): HeadSnapshot {
  const parse = parser(side, limits);
  let resume = 0;
  for (const k of [...cuts, bytes.length]) {
    const r = parse(bytes.slice(0, k), resume);
    if (r.kind !== "need-more") return snapshot(r);
    resume = r.resume;
  }
  return { kind: "need-more" };
}

export function parseWhole(side: Side, bytes: Uint8Array, limits = LIMITS): HeadSnapshot {
  return parseInPieces(side, bytes, [], limits);
}

export function everyByte(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

export type FrameSnapshot = { kind: "need-more" | "done"; forwarded: number; dataBytes: number } | { kind: "error"; reason: string };

/**
 * Frame a chunked body delivered in pieces ending at each of `cuts`, as a relay does: it forwards what
 * the framer validated and keeps the rest in front of the next piece. Checks the forwarded bytes are
 * the input's, in order; returns how many went through and how it ended.
 */
export function frameInPieces(bytes: Uint8Array, cuts: readonly number[], framer = new ChunkedFramer()): FrameSnapshot {
  framer.reset();
  let kept = new Uint8Array(0);
  let forwarded = 0;
  let from = 0;
  for (const k of [...cuts, bytes.length]) {
    const piece = bytes.subarray(from, k);
    from = k;
    const buffer = new Uint8Array(kept.length + piece.length);
    buffer.set(kept);
    buffer.set(piece, kept.length);
    const r: ChunkedResult = framer.feed(buffer, 0, buffer.length);
    if (r.kind === "error") return { kind: "error", reason: r.reason };
    if (r.consumed < 0 || r.consumed > buffer.length) throw new Error(`consumed ${r.consumed} of ${buffer.length}`);
    for (let i = 0; i < r.consumed; i++) if (buffer[i] !== bytes[forwarded + i]) throw new Error("forwarded bytes differ from the input");
    forwarded += r.consumed;
    if (r.kind === "done") return { kind: "done", forwarded, dataBytes: framer.dataBytes };
    kept = buffer.slice(r.consumed);
  }
  return { kind: "need-more", forwarded, dataBytes: framer.dataBytes };
}

/**
 * Fuzzes the HTTP/1.1 framing layer (src/http/): mutations of the captured fixtures and of hand-made
 * edge cases, plus random bytes, through the request and response head parsers, the serializer and
 * the chunked framer. Invariants checked for every input:
 *   - nothing throws; results are need-more, a head, or an error with a known reason and its status
 *     (a request's 400/431/501/505, a response's 502);
 *   - the same answer whole, cut at a random point, cut at several points, and (1 input in 16) one
 *     byte at a time, also when the head object parses something else between two pieces (a stale
 *     resume token must cost a re-parse, never a skipped check);
 *   - consumption is bounded: a head ends within the input and within maxHeaderBytes, its offsets
 *     lie inside it; the framer never reports more bytes than it was given and forwards the input's
 *     own bytes in order;
 *   - a parsed head, serialized (with hop-by-hop removal and edits), parses again as a clean head
 *     with the same start line, framing and no hop-by-hop field;
 *   - no input takes more than 250 ms (a hang or a quadratic path).
 * Run: nice -n 10 node_modules/.bin/bun bench/fuzz/http.ts [inputs=1000000] [seed=1] [--outcomes]
 * Prints "N inputs, F failures, T s", the first failures (as hex) if any, and with --outcomes how
 * often each result was reached (which rules the inputs exercised).
 */
import { ChunkedFramer } from "../../src/http/chunked.ts";
import { RequestHead, ResponseHead } from "../../src/http/head.ts";
import { FieldId } from "../../src/http/field-name.ts";
import { isHopByHop } from "../../src/http/hop-by-hop.ts";
import { parseRequestHead, parseResponseHead } from "../../src/http/parse-head.ts";
import { compactInPlace, serializeHead, serializeHeadInto } from "../../src/http/serialize.ts";
import { fixture } from "../../test/helpers/fixtures.ts";
import { fuzzMain } from "./byte-mutations.ts";
import { type HeadSnapshot, enc, frameInPieces, snapshot } from "../../test/helpers/http.ts";

const LIMITS = { maxHeaderBytes: 8192, maxHeaders: 64 };
/** For one head input in four: limits the seeds reach, so the 431 paths are fuzzed too. */
const TIGHT = { maxHeaderBytes: 160, maxHeaders: 6 };
const REQUEST_STATUSES = new Set([400, 431, 501, 505]);

const REQUEST_SEEDS = [
  ...["curl-get", "curl-post-cl", "curl-post-chunked", "python-get", "python-chunked"].map((n) => fixture(`http-req-${n}`)),
  ...[
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "\r\nPOST /x?y=1 HTTP/1.1\r\nHost: a:80\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\n",
    "GET http://x.example:8080/p HTTP/1.1\r\nHost: x.example:8080\r\nConnection: keep-alive, X-A\r\nX-A: 1\r\nKeep-Alive: 5\r\n\r\n",
    "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\nProxy-Authorization: Basic x\r\n\r\n",
    "OPTIONS * HTTP/1.0\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", // at TIGHT's field limit
    "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "GET /ws HTTP/1.1\r\nHost: [::1]:8\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nTE: trailers\r\n\r\n",
  ].map(enc),
];

const RESPONSE_SEEDS = [
  ...["nginx-200", "nginx-chunked-trailer", "nginx-304", "nginx-head", "nginx-204", "nginx-keepalive-pair", "python-close", "python-http-server"]
    .map((n) => fixture(`http-res-${n}`)),
  ...[
    "HTTP/1.1 200 OK\r\nContent-Length : 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    "HTTP/1.0 200 \r\nContent-Length: 3, 3\r\n\r\nabc",
  ].map(enc),
];

function bodyOf(bytes: Uint8Array): Uint8Array {
  const end = Buffer.from(bytes).indexOf("\r\n\r\n");
  return end < 0 ? bytes : bytes.subarray(end + 4);
}

const CHUNKED_SEEDS = [
  bodyOf(fixture("http-req-curl-post-chunked")),
  bodyOf(fixture("http-req-python-chunked")),
  bodyOf(fixture("http-res-nginx-chunked-trailer")).subarray(0, 200), // its start line and data (cut: the rest is like it)
  bodyOf(fixture("http-res-nginx-chunked-trailer")).subarray(-40),
  ...["5;a=\"b\\\"c\"\r\nhello\r\n0\r\nX: y\r\n\r\n", "1\r\na\r\n2\r\nbc\r\n0\r\n\r\nGET", "0\r\n\r\n", "A;x\r\n0123456789\r\n00\r\n\r\n"].map(enc),
];

// Bytes and strings that matter to the grammar: inserted more often than random ones.
const SPECIAL = [0x0d, 0x0a, 0x20, 0x09, 0x3a, 0x2c, 0x3b, 0x3d, 0x22, 0x5c, 0x00, 0x7f, 0xff, 0x30, 0x66, 0x2f, 0x2a];
const SNIPPETS = [
  "\r\n", "\n", "\r", " ", "\t", ":", "Transfer-Encoding: chunked\r\n", "Content-Length: 5\r\n", "Content-Length: 18446744073709551617\r\n",
  "Host: b\r\n", "Connection: close, X-B\r\n", "X-B: 1\r\n", "Transfer-Encoding: gzip\r\n", " folded\r\n", "HTTP/1.0", "chunked",
  "0\r\n\r\n", "ffffffffffffffff\r\n", ";ext=\"v\"", "Upgrade: h2c\r\n", "\r\n\r\n",
];

/** xorshift32: deterministic, fast, good enough to pick mutations. */
class Random {
  constructor(private s: number) { if (this.s === 0) this.s = 1; }
  next(): number {
    let x = this.s;
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  below(n: number): number { return this.next() % n; }
  pick<T>(a: readonly T[]): T { return a[this.below(a.length)]!; }
}

function mutate(rng: Random, seed: Uint8Array, other: Uint8Array): Uint8Array {
  let b = Array.from(seed);
  const rounds = 1 + rng.below(4);
  for (let r = 0; r < rounds; r++) {
    const at = b.length === 0 ? 0 : rng.below(b.length + 1);
    switch (rng.below(9)) {
      case 0: if (b.length > 0) b[Math.min(at, b.length - 1)] = rng.below(256); break;
      case 1: if (b.length > 0) b[Math.min(at, b.length - 1)] = rng.pick(SPECIAL); break;
      case 2: b.splice(at, 0, rng.pick(SPECIAL)); break;
      case 3: b.splice(at, 1 + rng.below(8)); break;
      case 4: b.splice(at, 0, ...enc(rng.pick(SNIPPETS))); break;
      case 5: b = b.slice(0, at); break;
      case 6: { // duplicate a line
        const s = b.lastIndexOf(0x0a, at) + 1, e = b.indexOf(0x0a, at);
        if (e > s) b.splice(e + 1, 0, ...b.slice(s, e + 1));
        break;
      }
      case 7: { // splice in part of another seed
        const from = rng.below(other.length + 1);
        b.splice(at, rng.below(4), ...other.subarray(from, from + rng.below(64)));
        break;
      }
      case 8: if (b.length > 0) b[Math.min(at, b.length - 1)]! ^= 0x20; break; // flip case
    }
  }
  return new Uint8Array(b);
}

function randomBytes(rng: Random): Uint8Array {
  const out = new Uint8Array(rng.below(300));
  for (let i = 0; i < out.length; i++) out[i] = rng.below(3) === 0 ? rng.pick(SPECIAL) : rng.below(256);
  return out;
}

export interface FuzzReport {
  inputs: number;
  failures: number;
  seconds: number;
  examples: string[];
  /** How often each outcome was reached ("request head", "response bare_lf", "chunked done", …): coverage. */
  outcomes: Record<string, number>;
}

type Side = "request" | "response";

/** Run `inputs` generated inputs from `seed`; failures are counted, the first few kept as hex. */
export function runFuzz(inputs: number, seed = 1): FuzzReport {
  const rng = new Random(seed);
  const heads = (limits: typeof LIMITS) => ({ request: new RequestHead(limits), response: new ResponseHead(limits) });
  const normal = { whole: heads(LIMITS), piece: heads(LIMITS) };
  const tight = { whole: heads(TIGHT), piece: heads(TIGHT) };
  let wholeHead = normal.whole, pieceHead = normal.piece;
  const otherHead = heads(LIMITS);
  const inPlaceHead = heads(LIMITS);
  const into = new Uint8Array(3 + 2 * LIMITS.maxHeaderBytes);
  const framer = new ChunkedFramer();
  const report: FuzzReport = { inputs: 0, failures: 0, seconds: 0, examples: [], outcomes: {} };
  const count = (outcome: string) => { report.outcomes[outcome] = (report.outcomes[outcome] ?? 0) + 1; };
  const started = performance.now();

  const fail = (what: string, bytes: Uint8Array, detail: unknown) => {
    report.failures++;
    if (report.examples.length < 5) report.examples.push(`${what}: ${Buffer.from(bytes).toString("hex")} ${JSON.stringify(detail)}`);
  };

  const parse = (side: Side, bytes: Uint8Array, head: RequestHead | ResponseHead, resume: number) =>
    side === "request" ? parseRequestHead(bytes, 0, head as RequestHead, resume) : parseResponseHead(bytes, 0, head as ResponseHead, resume);

  /** Parse as delivered in pieces ending at `cuts`; with `meddle`, the head object parses other bytes in between. */
  const inPieces = (side: Side, bytes: Uint8Array, cuts: number[], meddle: Uint8Array | null): HeadSnapshot => {
    let resume = 0;
    for (const k of [...cuts, bytes.length]) {
      const r = parse(side, bytes.slice(0, k), pieceHead[side], resume);
      if (r.kind !== "need-more") return snapshot(r);
      resume = r.resume;
      if (meddle !== null) parse(side, meddle, pieceHead[side], 0);
    }
    return { kind: "need-more" };
  };

  const checkHead = (side: Side, bytes: Uint8Array) => {
    const limits = rng.below(4) === 0 ? TIGHT : LIMITS;
    ({ whole: wholeHead, piece: pieceHead } = limits === TIGHT ? tight : normal);
    const r = parse(side, bytes, wholeHead[side], 0);
    const whole = snapshot(r);
    count(`${side} ${r.kind === "error" ? r.reason : r.kind}`);
    if (r.kind === "error") {
      const ok = side === "request" ? REQUEST_STATUSES.has(r.status) : r.status === 502;
      if (!ok || typeof r.reason !== "string") fail(`${side} status`, bytes, whole);
    } else if (r.kind === "head") {
      if (r.end > bytes.length || r.consumed > limits.maxHeaderBytes || r.count > limits.maxHeaders || r.consumed !== r.end || r.start > r.startLineEnd) {
        fail(`${side} bounds`, bytes, whole);
      }
      for (let i = 0; i < 4 * r.count; i++) if (r.fields[i]! < r.startLineEnd || r.fields[i]! > r.end) fail(`${side} offsets`, bytes, whole);
      checkSerialized(side, bytes, r);
    }
    const cut = rng.below(bytes.length + 1);
    const cuts = [rng.below(bytes.length + 1), rng.below(bytes.length + 1), rng.below(bytes.length + 1)].sort((a, b) => a - b);
    const variants: [string, HeadSnapshot][] = [
      ["one cut", inPieces(side, bytes, [cut], null)],
      ["three cuts, meddled", inPieces(side, bytes, cuts, rng.pick(side === "request" ? REQUEST_SEEDS : RESPONSE_SEEDS))],
    ];
    if (rng.below(16) === 0) variants.push(["byte by byte", inPieces(side, bytes, Array.from({ length: bytes.length }, (_, i) => i), null)]);
    for (const [how, got] of variants) if (!Bun.deepEquals(got, whole)) fail(`${side} ${how}`, bytes, { whole, got });
  };

  const checkSerialized = (side: Side, bytes: Uint8Array, head: RequestHead | ResponseHead) => {
    const upgrade = rng.below(4) === 0;
    const edits = rng.below(2) === 0
      ? { upgrade, set: [["X-Forwarded-For", "192.0.2.1"]] as [string, string][], add: [["Via", "1.1 sy"]] as [string, string][], remove: ["accept"] }
      : { upgrade };
    const before = { start: Buffer.from(bytes.subarray(head.start, head.startLineEnd)).toString("latin1"), cl: head.contentLength, te: head.transferEncoding };
    const out = serializeHead(head, edits);
    const again = parse(side, out, otherHead[side], 0);
    if (again.kind !== "head") return fail(`${side} reserialized does not parse`, bytes, snapshot(again));
    const absolute = again instanceof RequestHead && again.targetForm === "absolute";
    const start = Buffer.from(out.subarray(again.start, again.startLineEnd)).toString("latin1");
    if (
      again.consumed !== out.length || (!again.clean && !absolute) || start !== before.start || again.contentLength !== before.cl ||
      again.transferEncoding !== before.te || hasHopByHopBesidesFraming(again, upgrade)
    ) fail(`${side} reserialized`, bytes, { before, after: snapshot(again) });
    // The hot path's two other writers give the same bytes: into a caller's buffer, and in place.
    const text = Buffer.from(out).toString("latin1");
    const end = serializeHeadInto(head, edits, into, 3);
    if (end < 0 || Buffer.from(into.subarray(3, end)).toString("latin1") !== text) fail(`${side} serializeHeadInto`, bytes, { end });
    const copy = bytes.slice();
    const h = parse(side, copy, inPlaceHead[side], 0);
    if (h.kind !== "head") return fail(`${side} copy does not parse`, bytes, snapshot(h));
    const tail = Buffer.from(copy.subarray(h.end)).toString("latin1");
    const s = compactInPlace(h, edits);
    if (s >= 0) {
      if (Buffer.from(copy.subarray(s, h.end)).toString("latin1") !== text || Buffer.from(copy.subarray(h.end)).toString("latin1") !== tail) fail(`${side} compactInPlace`, bytes, { s });
    } else if (Buffer.from(copy).toString("latin1") !== Buffer.from(bytes).toString("latin1")) fail(`${side} compactInPlace refused but wrote`, bytes, { s });
  };

  const checkChunked = (bytes: Uint8Array) => {
    framer.reset();
    const r = framer.feed(bytes);
    if (r.kind !== "error" && (r.consumed < 0 || r.consumed > bytes.length)) fail("chunked bounds", bytes, r);
    const whole = frameInPieces(bytes, []);
    count(`chunked ${whole.kind === "error" ? whole.reason : whole.kind}`);
    const cuts = [rng.below(bytes.length + 1), rng.below(bytes.length + 1)].sort((a, b) => a - b);
    const split = frameInPieces(bytes, cuts);
    if (!Bun.deepEquals(split, whole)) fail("chunked split", bytes, { whole, split });
    if (rng.below(16) === 0) {
      const each = frameInPieces(bytes, Array.from({ length: bytes.length }, (_, i) => i));
      if (!Bun.deepEquals(each, whole)) fail("chunked byte by byte", bytes, { whole, each });
    }
  };

  for (let n = 0; n < inputs; n++) {
    const kind = n % 3;
    const seeds = kind === 0 ? REQUEST_SEEDS : kind === 1 ? RESPONSE_SEEDS : CHUNKED_SEEDS;
    const bytes = rng.below(10) === 0 ? randomBytes(rng) : mutate(rng, rng.pick(seeds), rng.pick(seeds));
    const t0 = performance.now();
    try {
      if (kind === 0) checkHead("request", bytes);
      else if (kind === 1) checkHead("response", bytes);
      else checkChunked(bytes);
    } catch (e) {
      fail("threw", bytes, String(e));
    }
    if (performance.now() - t0 > 250) fail("slow", bytes, performance.now() - t0);
    report.inputs++;
  }
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

/**
 * Transfer-Encoding is hop-by-hop but goes on as received (serialize.ts), and an upgrade goes on with
 * the `Connection: upgrade` the serializer writes: no other hop-by-hop field may remain.
 */
function hasHopByHopBesidesFraming(head: RequestHead | ResponseHead, upgrade: boolean): boolean {
  for (let i = 0; i < head.count; i++) {
    const id = head.ids[i];
    if (id === FieldId.TRANSFER_ENCODING || (upgrade && id === FieldId.CONNECTION && head.isUpgrade)) continue;
    if (isHopByHop(head, i, upgrade)) return true;
  }
  return false;
}

if (import.meta.main) fuzzMain((inputs, seed) => { const r = runFuzz(inputs, seed); return { ...r, seen: r.outcomes }; });

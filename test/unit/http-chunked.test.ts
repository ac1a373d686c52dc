/**
 * The chunked framer over captured bodies (see http-head.test.ts for how the fixtures were made:
 * curl's and python's chunked uploads, nginx's gzip'd response with an `add_trailer` field) and over
 * every rejection rule of issue 14, each fed whole, one byte at a time and cut at every point.
 */
import { describe, expect, test } from "bun:test";
import { ChunkedFramer } from "../../src/http/chunked.ts";
import { fixture } from "../helpers/fixtures.ts";
import { enc, everyByte, frameInPieces } from "../helpers/http.ts";

/** The body of a captured message: what follows its head. */
function bodyOf(name: string): Uint8Array {
  const bytes = fixture(name);
  const end = Buffer.from(bytes).indexOf("\r\n\r\n") + 4;
  return bytes.subarray(end);
}

function sameEveryWay(bytes: Uint8Array) {
  const whole = frameInPieces(bytes, []);
  expect(frameInPieces(bytes, everyByte(bytes.length))).toEqual(whole);
  for (let k = 0; k <= bytes.length; k++) expect(frameInPieces(bytes, [k])).toEqual(whole);
  return whole;
}

describe("captured chunked bodies, whole, one byte at a time, split at every point", () => {
  const cases: [string, number][] = [
    ["http-req-curl-post-chunked", 4053], // one 0xfd5 chunk
    ["http-req-python-chunked", 18 + 301 + 16], // three chunks
    ["http-res-nginx-chunked-trailer", 12176], // one chunk, then the X-Checksum trailer
  ];
  for (const [name, dataBytes] of cases) {
    test(name, () => {
      const body = bodyOf(name);
      expect(sameEveryWay(body)).toEqual({ kind: "done", forwarded: body.length, dataBytes });
    });
  }

  test("data is validated as it arrives, a size line only once whole", () => {
    const framer = new ChunkedFramer();
    expect(framer.feed(enc("10\r"))).toEqual({ kind: "need-more", consumed: 0 });
    expect(framer.feed(enc("10\r\nabc"))).toEqual({ kind: "need-more", consumed: 7 });
    expect(framer.feed(enc("defghijklmnop\r"))).toEqual({ kind: "need-more", consumed: 13 });
    expect(framer.feed(enc("\r\n0\r\n"))).toEqual({ kind: "need-more", consumed: 5 });
    expect(framer.feed(enc("Trailer-A: 1\r\n\r"))).toEqual({ kind: "need-more", consumed: 14 });
    expect(framer.feed(enc("\r\nGET / HTTP/1.1\r\n"))).toEqual({ kind: "done", consumed: 2 });
    expect(framer.dataBytes).toBe(16);
    expect(framer.feed(enc("more"))).toEqual({ kind: "done", consumed: 0 });
  });

  test("the end is found with the next message right behind it, and a start offset is honoured", () => {
    const bytes = enc("xx3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n");
    expect(new ChunkedFramer().feed(bytes, 2)).toEqual({ kind: "done", consumed: 13 });
    expect(new ChunkedFramer().feed(bytes, 2, 10)).toEqual({ kind: "need-more", consumed: 8 });
  });

  test("extensions: tokens, quoted strings with escapes, BWS around ; and =", () => {
    const body = enc('5;name=value;flag ; q = "a \\" b;c"\r\nhello\r\n0;last\r\n\r\n');
    expect(sameEveryWay(body)).toEqual({ kind: "done", forwarded: body.length, dataBytes: 5 });
  });

  test("hex digits in either case, leading zeros, the largest size", () => {
    expect(frameInPieces(enc("A\r\n0123456789\r\n000\r\n\r\n"), [])).toMatchObject({ kind: "done", dataBytes: 10 });
    expect(frameInPieces(enc("0000000000000000000000001\r\nx\r\n0\r\n\r\n"), [])).toMatchObject({ kind: "done", dataBytes: 1 });
    expect(new ChunkedFramer().feed(enc("1fffffffffffff\r\n"))).toEqual({ kind: "need-more", consumed: 16 });
  });

  test("reset starts a new body; a failed framer keeps failing", () => {
    const framer = new ChunkedFramer();
    expect(framer.feed(enc("z\r\n"))).toEqual({ kind: "error", reason: "invalid_chunk_size" });
    expect(framer.feed(enc("0\r\n\r\n"))).toEqual({ kind: "error", reason: "invalid_chunk_size" });
    framer.reset();
    expect(framer.feed(enc("0\r\n\r\n"))).toEqual({ kind: "done", consumed: 5 });
  });
});

describe("chunked bodies refused (issue 14, RFC 9112 §7.1)", () => {
  const cases: [string, string, string][] = [
    ["size not hex", "zz\r\n", "invalid_chunk_size"],
    ["size with a sign", "-1\r\n", "invalid_chunk_size"],
    ["size 0x-prefixed", "0x5\r\nhello\r\n", "invalid_chunk_size"],
    ["empty size", "\r\n", "invalid_chunk_size"],
    ["space after the size", "5 \r\nhello\r\n", "invalid_chunk_size"],
    ["space before the size", " 5\r\nhello\r\n", "invalid_chunk_size"],
    ["size over 2^53-1", "20000000000000\r\n", "chunk_size_overflow"],
    ["size over 64 bits", "10000000000000000\r\n", "chunk_size_overflow"],
    ["bare CR in an extension", "5;a=b\rc\r\nhello\r\n0\r\n\r\n", "bare_cr_in_chunk"],
    ["bare CR after the size", "5\r\rhello\r\n", "bare_cr_in_chunk"],
    ["LF inside a quoted extension", '5;a="x\ny"\r\nhello\r\n', "bare_lf_in_chunk"],
    ["CRLF inside a quoted extension", '5;a="x\r\ny"\r\nhello\r\n', "invalid_chunk_extension"],
    ["extension without a name", "5;=b\r\nhello\r\n", "invalid_chunk_extension"],
    ["extension with an empty value", "5;a=\r\nhello\r\n", "invalid_chunk_extension"],
    ["extension value not a token", "5;a=b c\r\nhello\r\n", "invalid_chunk_extension"],
    ["extension with a NUL", "5;a\0\r\nhello\r\n", "invalid_chunk_extension"],
    ["unterminated quoted extension", '5;a="x\r\nhello\r\n', "invalid_chunk_extension"],
    ["bare LF ending the size line", "5\nhello\r\n0\r\n\r\n", "bare_lf_in_chunk"],
    ["bare LF ending the last chunk", "0\n\r\n", "bare_lf_in_chunk"],
    ["bare LF ending the body", "0\r\n\n", "bare_lf_in_chunk"],
    ["bare LF ending a trailer", "0\r\nX-A: b\n\r\n", "bare_lf_in_chunk"],
    ["bare LF after chunk data", "5\r\nhello\n0\r\n\r\n", "bare_lf_in_chunk"],
    ["missing CRLF after chunk data", "5\r\nhelloX\r\n0\r\n\r\n", "missing_crlf_after_chunk_data"],
    ["data longer than its size", "3\r\nhello\r\n0\r\n\r\n", "missing_crlf_after_chunk_data"],
    ["CR without LF after chunk data", "5\r\nhello\rX0\r\n\r\n", "missing_crlf_after_chunk_data"],
    ["a size line over 4096 bytes", `1;a=${"b".repeat(4100)}\r\nx\r\n`, "chunk_line_too_long"],
    ["leading zeros past the line limit", `${"0".repeat(5000)}1\r\nx\r\n`, "chunk_line_too_long"],
    ["obs-fold in a trailer", "0\r\nX-A: b\r\n c\r\n\r\n", "obs_fold"],
    ["whitespace before a trailer's colon", "0\r\nX-A : b\r\n\r\n", "whitespace_before_colon"],
    ["invalid trailer name", "0\r\nX A: b\r\n\r\n", "invalid_header_name"],
    ["trailer without a colon", "0\r\nX-A\r\n\r\n", "missing_colon"],
    ["CTL in a trailer value", "0\r\nX-A: \x01\r\n\r\n", "invalid_header_value"],
    ["bare CR in a trailer", "0\r\nX-A: b\rc\r\n\r\n", "bare_cr"],
    ["a trailer line starting with CR", "0\r\n\rX: b\r\n\r\n", "invalid_header_name"],
    ["65 trailers", `0\r\n${"T: 1\r\n".repeat(65)}\r\n`, "too_many_trailers"],
    ["trailers over 16 KiB", `0\r\n${`T: ${"v".repeat(1000)}\r\n`.repeat(17)}\r\n`, "trailers_too_large"],
  ];
  for (const [name, text, reason] of cases) {
    test(`${name}: ${JSON.stringify(text.length > 60 ? text.slice(0, 60) + "…" : text)}`, () => {
      expect(sameEveryWay(enc(text))).toEqual({ kind: "error", reason });
    });
  }

  test("64 trailers and a section just under the limits are fine", () => {
    expect(frameInPieces(enc(`0\r\n${"T: 1\r\n".repeat(64)}\r\n`), [])).toMatchObject({ kind: "done" });
    const framer = new ChunkedFramer({ maxLineBytes: 64, maxTrailerBytes: 12, maxTrailers: 4 });
    expect(frameInPieces(enc("0\r\nT: 12345\r\n\r\n"), [], framer)).toMatchObject({ kind: "done" }); // 10 + 2 bytes
    expect(frameInPieces(enc("0\r\nT: 123456\r\n\r\n"), [], framer)).toEqual({ kind: "error", reason: "trailers_too_large" });
  });
});

import { describe, expect, test } from "bun:test";
import { ByteQueue } from "../../src/net/byte-queue.ts";
import { CommandFramer, MAX_COMMAND_LINE_BYTES } from "../../src/smtp/command-framer.ts";
import { fixture } from "../helpers/fixtures.ts";

// Captured with test/fixtures/smtp-mysql-record-relay.py between swaks 20201014.0 and Postfix 3.7's
// smtp-sink on loopback (`smtp-sink -u nobody -h sink.test 127.0.0.1:PORT 16`):
//   plain:    swaks --ehlo client.example --from alice@a.example --to bob@B.Example,carol@b.example --data @body
//   pipeline: the same with --pipeline --from '<>' --to bob@b.example,dave@c.example (MAIL, both RCPTs and
//             DATA arrived in one 71-byte segment)
//   xclient:  swaks --ehlo proxy.example --xclient-name mail.client.example --xclient-helo client.example --quit-after RCPT
// body: "Subject: fixture\r\n\r\nline one\r\n.leading dot\r\n..two dots\r\nlast\r\n" (swaks dot-stuffs it).
const PLAIN = fixture("smtp-swaks-plain-client");
const PIPELINE = fixture("smtp-swaks-pipeline-client");
const XCLIENT = fixture("smtp-swaks-xclient-client");

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string) => enc.encode(s);

type Unit = string; // "line TEXT" | "skip N" | "error REASON N"

/** Feed `pieces` through a queue as a session would and list what the framer hands out. */
function frameAll(pieces: readonly Uint8Array[], limit = MAX_COMMAND_LINE_BYTES): { units: Unit[]; pending: number } {
  const framer = new CommandFramer(limit);
  const queue = new ByteQueue(1 << 20, "test");
  const units: Unit[] = [];
  let skipped = 0;
  for (const piece of pieces) {
    queue.push(piece);
    for (;;) {
      if (queue.size === 0) break;
      const all = queue.bytes();
      const f = framer.next(all);
      if (f.kind === "need-more") break;
      queue.consume(f.size);
      if (f.kind === "line") units.push(`line ${dec.decode(all.subarray(f.start, f.end))}`);
      // Skips are summed into the error that ends them: how a line is skipped depends on the splits.
      else if (f.kind === "skip") skipped += f.size;
      else {
        units.push(`error ${f.reason} ${skipped + f.size}`);
        skipped = 0;
      }
    }
    expect(queue.size).toBeLessThan(limit); // bounded: never more than one partial line held
  }
  return { units, pending: queue.size + skipped };
}

function everyWay(input: Uint8Array, limit = MAX_COMMAND_LINE_BYTES) {
  const whole = frameAll([input], limit);
  const bytewise = frameAll(Array.from(input, (_, i) => input.subarray(i, i + 1)), limit);
  expect(bytewise).toEqual(whole);
  for (let k = 0; k <= input.length; k++) expect(frameAll([input.subarray(0, k), input.subarray(k)], limit)).toEqual(whole);
  return whole;
}

describe("captured swaks sessions, whole, one byte at a time, and split at every point", () => {
  for (const [name, bytes] of [["plain", PLAIN], ["pipeline", PIPELINE], ["xclient", XCLIENT]] as const) {
    test(name, () => {
      const r = everyWay(bytes);
      // Every line of the capture, in order, and nothing left over.
      const expected = dec.decode(bytes).split("\r\n").slice(0, -1).map((l) => `line ${l}`);
      expect(r.units).toEqual(expected);
      expect(r.pending).toBe(0);
    });
  }

  test("pipelined commands in one chunk come out one per call, in order", () => {
    const framer = new CommandFramer();
    const chunk = PIPELINE;
    const lines: string[] = [];
    for (let at = 0; ;) {
      const f = framer.next(chunk, at);
      if (f.kind !== "line") break;
      lines.push(dec.decode(chunk.subarray(f.start, f.end)));
      at += f.size;
    }
    expect(lines.slice(0, 5)).toEqual(["EHLO client.example", "MAIL FROM:<>", "RCPT TO:<bob@b.example>", "RCPT TO:<dave@c.example>", "DATA"]);
  });
});

describe("line length (RFC 5321 §4.5.3.1.4: 512 including CRLF)", () => {
  const line = (n: number) => b(`NOOP ${"x".repeat(n - 7)}\r\n`); // n bytes with the CRLF

  test("512 bytes is a line, 513 is too long", () => {
    expect(everyWay(line(512)).units).toEqual([`line NOOP ${"x".repeat(505)}`]);
    expect(everyWay(line(513)).units).toEqual(["error line_too_long 513"]);
  });

  test("511 bytes of text then a bare CR is too long, however it is split", () => {
    expect(everyWay(b(`${"B".repeat(511)}\r:\r\nQUIT\r\n`)).units).toEqual(["error line_too_long 515", "line QUIT"]);
  });

  test("the rest of an over-long line is skipped, then the next command is read in step", () => {
    const input = b(`MAIL FROM:<${"a".repeat(2000)}@b.example>\r\nRSET\r\nQUIT\r\n`);
    const r = everyWay(input);
    expect(r.units).toEqual([`error line_too_long ${input.length - 12}`, "line RSET", "line QUIT"]);
  });

  test("skipping keeps a trailing CR so a CRLF split across reads still ends the line", () => {
    const framer = new CommandFramer(16);
    const long = b(`${"A".repeat(30)}\r`);
    expect(framer.next(long)).toEqual({ kind: "skip", size: 30 });
    expect(framer.skipping).toBe(true);
    expect(framer.next(b("\r\nNOOP\r\n"))).toEqual({ kind: "error", reason: "line_too_long", size: 2 });
    expect(framer.next(b("NOOP\r\n"))).toEqual({ kind: "line", start: 0, end: 4, size: 6 });
  });

  test("a bare LF while skipping does not end the long line", () => {
    expect(everyWay(b(`${"A".repeat(20)}\nNOOP\r\nQUIT\r\n`), 16).units).toEqual(["error line_too_long 27", "line QUIT"]);
  });

  test("the caller may allow longer lines", () => {
    expect(everyWay(line(1000), 1000).units).toHaveLength(1);
    expect(everyWay(line(1001), 1000).units).toEqual(["error line_too_long 1001"]);
  });

  test("a limit below 3 (one byte and CRLF) is refused", () => {
    expect(() => new CommandFramer(2)).toThrow(RangeError);
  });
});

describe("line ends (RFC 5321 §2.3.8: only CRLF)", () => {
  test("bare LF: the error covers the line through the LF", () => {
    expect(everyWay(b("EHLO a.example\nMAIL FROM:<>\r\n")).units).toEqual(["error bare_lf 15", "line MAIL FROM:<>"]);
  });

  test("bare CR: the error covers the line through the CR", () => {
    expect(everyWay(b("RCPT TO:<a@b.example>\rDATA\r\n")).units).toEqual(["error bare_cr 22", "line DATA"]);
  });

  test("a CR at the end of the bytes waits for the next byte", () => {
    expect(new CommandFramer().next(b("QUIT\r"))).toEqual({ kind: "need-more" });
  });

  test("an LF alone, a CR alone", () => {
    expect(new CommandFramer().next(b("\n"))).toEqual({ kind: "error", reason: "bare_lf", size: 1 });
    expect(new CommandFramer().next(b("\rx"))).toEqual({ kind: "error", reason: "bare_cr", size: 1 });
  });

  test("an empty line is a line (the parser rejects it)", () => {
    expect(new CommandFramer().next(b("\r\n"))).toEqual({ kind: "line", start: 0, end: 0, size: 2 });
  });

  test("start offsets are honoured", () => {
    const bytes = b("xxNOOP\r\n");
    expect(new CommandFramer().next(bytes, 2)).toEqual({ kind: "line", start: 2, end: 6, size: 6 });
  });
});

import { describe, expect, test } from "bun:test";
import { DataBodyScanner, type DataScan } from "../../src/smtp/data-body.ts";
import { fixture } from "../helpers/fixtures.ts";

const enc = new TextEncoder();
const b = (s: string) => enc.encode(s);

// The message swaks sent after DATA in the captured plain session (smtp-command-framer.test.ts says
// how it was captured): dot-stuffed by swaks, ending in CRLF.CRLF.
const session = fixture("smtp-swaks-plain-client");
const text = new TextDecoder().decode(session);
const bodyStart = text.indexOf("DATA\r\n") + 6;
const bodyEnd = text.indexOf("\r\n.\r\n") + 5;
const BODY = session.subarray(bodyStart, bodyEnd);
// RFC 1870 size: the unstuffed message with its CRLFs, without the final ".CRLF".
const RFC1870_SIZE = "Subject: fixture\r\n\r\nline one\r\n.leading dot\r\n..two dots\r\nlast\r\n\r\n".length;

/** Scan `pieces` in order; the scans up to the first end or error, with sizes summed. */
function scanAll(pieces: readonly Uint8Array[], limit = Infinity) {
  const s = new DataBodyScanner(limit);
  let taken = 0;
  let last: DataScan | null = null;
  for (const piece of pieces) {
    last = s.scan(piece);
    taken += last.size;
    if (last.kind !== "body") return { ...last, size: taken };
  }
  return last === null ? null : { ...last, size: taken };
}

function everyWay(input: Uint8Array, limit = Infinity) {
  const whole = scanAll([input], limit);
  expect(scanAll(Array.from(input, (_, i) => input.subarray(i, i + 1)), limit)).toEqual(whole);
  for (let k = 0; k <= input.length; k++) expect(scanAll([input.subarray(0, k), input.subarray(k)], limit)).toEqual(whole);
  for (let k = 0; k + 3 <= input.length; k += 3) {
    expect(scanAll([input.subarray(0, k), input.subarray(k, k + 3), input.subarray(k + 3)], limit)).toEqual(whole);
  }
  return whole;
}

describe("the captured message, whole, one byte at a time, split at every point", () => {
  test("ends exactly after CRLF.CRLF, with the RFC 1870 size", () => {
    expect(BODY.length).toBeGreaterThan(40);
    expect(everyWay(BODY)).toEqual({ kind: "end", size: BODY.length, tooLarge: false, messageBytes: RFC1870_SIZE });
  });

  test("bytes after the terminator are the next command, wherever the chunks are cut", () => {
    const rest = session.subarray(bodyStart); // the message, then QUIT\r\n
    expect(new TextDecoder().decode(rest.subarray(BODY.length))).toBe("QUIT\r\n");
    expect(everyWay(rest)).toEqual({ kind: "end", size: BODY.length, tooLarge: false, messageBytes: RFC1870_SIZE });
  });

  test("dot-stuffed lines are relayed as they are: every byte of the chunk is message", () => {
    const s = new DataBodyScanner();
    const upToLast = BODY.length - 3;
    expect(s.scan(BODY.subarray(0, upToLast))).toEqual({ kind: "body", size: upToLast, tooLarge: false });
    expect(s.scan(BODY.subarray(upToLast))).toEqual({ kind: "end", size: 3, tooLarge: false, messageBytes: RFC1870_SIZE });
  });
});

describe("the terminator", () => {
  test("an empty message: the DATA command's CRLF is the line end before the dot", () => {
    expect(everyWay(b(".\r\nQUIT\r\n"))).toEqual({ kind: "end", size: 3, tooLarge: false, messageBytes: 0 });
  });

  test("a message that is one empty line", () => {
    expect(everyWay(b("\r\n.\r\n"))).toEqual({ kind: "end", size: 5, tooLarge: false, messageBytes: 2 });
  });

  test("a line that only starts with a dot does not end the message", () => {
    expect(everyWay(b(".x\r\n..\r\n. \r\n.\r\n"))).toEqual({ kind: "end", size: 15, tooLarge: false, messageBytes: ".x\r\n..\r\n. \r\n".length - 3 });
  });

  test("CRLF.CRLF in the middle of a larger chunk", () => {
    const input = b("a\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<x@y.example>\r\n");
    expect(new DataBodyScanner().scan(input)).toEqual({ kind: "end", size: 6, tooLarge: false, messageBytes: 3 });
  });

  test("a 4 MiB message in 64 KiB reads ends where it should", () => {
    const line = b(`${"x".repeat(76)}\r\n`);
    const big = new Uint8Array(line.length * 55_000 + 5);
    for (let i = 0; i < 55_000; i++) big.set(line, i * line.length);
    big.set(b("\r\n.\r\n"), big.length - 5);
    // The last "\r\n" before the dot is a second, empty line: 55 000 lines of 78 bytes, then 2.
    const r = scanAll(Array.from({ length: Math.ceil(big.length / 65536) }, (_, i) => big.subarray(i * 65536, (i + 1) * 65536)));
    expect(r).toEqual({ kind: "end", size: big.length, tooLarge: false, messageBytes: big.length - 3 });
  });
});

describe("bare CR and bare LF are refused (SMTP smuggling, CVE-2023-51764 class)", () => {
  // Each: the bytes after DATA, the reason, and the offset of the byte that breaks the rule (a bare
  // LF, or the byte after a bare CR).
  const cases: [string, "bare_lf_in_data" | "bare_cr_in_data", number][] = [
    ["a\n.\nMAIL FROM:<>\r\n", "bare_lf_in_data", 1], // LF.LF: the classic smuggling terminator
    ["a\r\n.\nMAIL FROM:<>\r\n", "bare_lf_in_data", 4], // CRLF.LF
    ["a\n.\r\nMAIL FROM:<>\r\n", "bare_lf_in_data", 1], // LF.CRLF
    ["a\r.\r\nMAIL FROM:<>\r\n", "bare_cr_in_data", 2], // CR.CRLF
    ["a\r\n.\rMAIL FROM:<>\r\n", "bare_cr_in_data", 5], // CRLF.CR then not LF
    ["a\r\n.\r.\r\n", "bare_cr_in_data", 5],
    [".\n", "bare_lf_in_data", 1], // right after DATA
    ["\n.\r\n", "bare_lf_in_data", 0],
    ["line\rmore\r\n.\r\n", "bare_cr_in_data", 5], // a CR inside a line
    ["line\nmore\r\n.\r\n", "bare_lf_in_data", 4], // an LF inside a line
    ["a\r\r\n.\r\n", "bare_cr_in_data", 2], // CR CR LF
    ["a\r\n\n.\r\n", "bare_lf_in_data", 3], // an empty "line" ended by LF alone
  ];
  for (const [input, reason, at] of cases) {
    test(JSON.stringify(input), () => {
      expect(everyWay(b(input))).toEqual({ kind: "error", reason, size: at });
    });
  }

  test("a bare CR split from what follows it is still caught", () => {
    const s = new DataBodyScanner();
    expect(s.scan(b("a\r"))).toEqual({ kind: "body", size: 2, tooLarge: false });
    expect(s.scan(b("b\r\n.\r\n"))).toEqual({ kind: "error", reason: "bare_cr_in_data", size: 0 });
  });
});

describe("the size limit (maxMessageBytes, RFC 1870)", () => {
  test("a message of exactly the limit is not too large; one byte more is", () => {
    expect(everyWay(b("12345678\r\n.\r\n"), 10)).toEqual({ kind: "end", size: 13, tooLarge: false, messageBytes: 10 });
    expect(everyWay(b("123456789\r\n.\r\n"), 10)).toEqual({ kind: "end", size: 14, tooLarge: true, messageBytes: 11 });
  });

  test("stuffing dots do not count", () => {
    expect(everyWay(b("..123456\r\n.\r\n"), 9)).toEqual({ kind: "end", size: 13, tooLarge: false, messageBytes: 9 });
  });

  test("past the limit the scan goes on to the end, so the session answers 552 in step", () => {
    const s = new DataBodyScanner(4);
    expect(s.scan(b("0123456789"))).toEqual({ kind: "body", size: 10, tooLarge: true });
    expect(s.messageBytes).toBe(10);
    expect(s.scan(b("\r\n.\r\nQUIT\r\n"))).toEqual({ kind: "end", size: 5, tooLarge: true, messageBytes: 12 });
  });
});

describe("use", () => {
  test("scanning after the end needs a reset; reset starts a new message", () => {
    const s = new DataBodyScanner();
    expect(s.scan(b(".\r\n")).kind).toBe("end");
    expect(() => s.scan(b("x"))).toThrow("reset");
    s.reset();
    expect(s.messageBytes).toBe(0);
    expect(s.scan(b("x\r\n.\r\n"))).toEqual({ kind: "end", size: 6, tooLarge: false, messageBytes: 3 });
  });

  test("a start offset skips bytes before the message", () => {
    expect(new DataBodyScanner().scan(b("DATA\r\n.\r\n"), 6)).toEqual({ kind: "end", size: 3, tooLarge: false, messageBytes: 0 });
  });

  test("an empty chunk is an empty body result", () => {
    expect(new DataBodyScanner().scan(new Uint8Array(0))).toEqual({ kind: "body", size: 0, tooLarge: false });
  });
});

import { describe, expect, test } from "bun:test";
import { ehloCapabilities } from "../../src/smtp/ehlo-capabilities.ts";
import { SMTP_ERRORS, type SmtpErrorReason } from "../../src/smtp/errors.ts";
import { parseReply, replyExtent, type ReplyParse, type SmtpReply } from "../../src/smtp/reply.ts";
import { buildBanner, buildEhloReply, buildReply, errorReply, MAX_REPLY_LINE_BYTES, proxyCapabilities } from "../../src/smtp/reply-builder.ts";
import { buildXclient, xclientAddress, xtextDecode, xtextEncode } from "../../src/smtp/xclient.ts";
import { fixture } from "../helpers/fixtures.ts";

// What smtp-sink (Postfix 3.7) answered swaks in the captured sessions (smtp-command-framer.test.ts
// says how they were captured): the banner, a 10-line EHLO reply whose last line is "250 " with no
// text, and one reply per command with enhanced status codes.
const PLAIN = fixture("smtp-sink-plain-server");
const XCLIENT = fixture("smtp-sink-xclient-server");

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string) => enc.encode(s);

function allReplies(pieces: readonly Uint8Array[]): SmtpReply[] {
  let held = new Uint8Array(0);
  const out: SmtpReply[] = [];
  for (const piece of pieces) {
    const joined = new Uint8Array(held.length + piece.length);
    joined.set(held);
    joined.set(piece, held.length);
    held = joined;
    for (;;) {
      const r = parseReply(held);
      if (r.kind === "need-more") break;
      if (r.kind === "error") throw new Error(r.reason);
      out.push(r.reply);
      held = held.subarray(r.size);
    }
  }
  expect(held.length).toBe(0);
  return out;
}

function everyWay(bytes: Uint8Array): SmtpReply[] {
  const whole = allReplies([bytes]);
  expect(allReplies(Array.from(bytes, (_, i) => bytes.subarray(i, i + 1)))).toEqual(whole);
  for (let k = 0; k <= bytes.length; k++) expect(allReplies([bytes.subarray(0, k), bytes.subarray(k)])).toEqual(whole);
  return whole;
}

describe("captured smtp-sink replies, whole, one byte at a time, split at every point", () => {
  test("plain session", () => {
    const replies = everyWay(PLAIN);
    expect(replies.map((r) => r.code)).toEqual([220, 250, 250, 250, 250, 354, 250, 221]);
    expect(replies[0]).toEqual({ code: 220, enhanced: null, lines: ["sink.test ESMTP"] });
    expect(replies[1]!.lines).toEqual(["sink.test", "PIPELINING", "8BITMIME", "AUTH PLAIN LOGIN", "XCLIENT NAME HELO", "XFORWARD NAME ADDR PROTO HELO", "ENHANCEDSTATUSCODES", "DSN", ""]);
    expect(replies[2]).toEqual({ code: 250, enhanced: "2.1.0", lines: ["2.1.0 Ok"] });
    expect(replies[5]).toEqual({ code: 354, enhanced: null, lines: ["End data with <CR><LF>.<CR><LF>"] });
  });

  test("XCLIENT session: smtp-sink answers XCLIENT with 250 (Postfix's smtpd answers 220)", () => {
    expect(everyWay(XCLIENT).map((r) => [r.code, r.enhanced])).toEqual([[220, null], [250, null], [250, "2.0.0"], [221, null]]);
  });

  test("the EHLO reply's extensions", () => {
    const ehlo = allReplies([PLAIN])[1]!;
    const caps = ehloCapabilities(ehlo)!;
    expect(caps.pipelining).toBe(true);
    expect(caps.eightBitMime).toBe(true);
    expect(caps.enhancedStatusCodes).toBe(true);
    expect(caps.startTls).toBe(false);
    expect(caps.smtpUtf8).toBe(false);
    expect(caps.size).toBeNull();
    expect(caps.chunking).toBe(false);
    expect([...caps.xclient!]).toEqual(["NAME", "HELO"]);
    expect(caps.keywords.get("AUTH")).toEqual(["PLAIN", "LOGIN"]);
    expect([...caps.keywords.keys()]).toEqual(["PIPELINING", "8BITMIME", "AUTH", "XCLIENT", "XFORWARD", "ENHANCEDSTATUSCODES", "DSN"]);
  });
});

describe("reply syntax (RFC 5321 §4.2)", () => {
  const one = (s: string): ReplyParse => parseReply(b(s));

  test("a code alone, a code and text, a multi-line reply", () => {
    expect(one("250\r\n")).toEqual({ kind: "reply", reply: { code: 250, enhanced: null, lines: [""] }, size: 5 });
    expect(one("421 4.4.2 mx.example timeout\r\nrest")).toEqual({ kind: "reply", reply: { code: 421, enhanced: "4.4.2", lines: ["4.4.2 mx.example timeout"] }, size: 30 });
    expect(one("550-5.7.1 first\r\n550 5.7.1 second\r\n")).toEqual({ kind: "reply", reply: { code: 550, enhanced: "5.7.1", lines: ["5.7.1 first", "5.7.1 second"] }, size: 35 });
  });

  test("an enhanced code must match the reply's class and be followed by a space or the end", () => {
    const enhanced = (s: string) => {
      const r = one(s);
      if (r.kind !== "reply") throw new Error(r.kind);
      return r.reply.enhanced;
    };
    expect(enhanced("250 2.1.0\r\n")).toBe("2.1.0");
    expect(enhanced("550 5.7.1 denied\r\n")).toBe("5.7.1");
    expect(enhanced("250 5.1.0 x\r\n")).toBeNull();
    expect(enhanced("250 2.1.0x\r\n")).toBeNull();
    expect(enhanced("250 2.1234.0 x\r\n")).toBeNull();
  });

  test("need-more until the last line", () => {
    expect(one("250-a\r\n250-b\r\n")).toEqual({ kind: "need-more" });
    expect(one("25")).toEqual({ kind: "need-more" });
  });

  test("refused, each with the exact bytes", () => {
    expect(one("2500 x\r\n")).toEqual({ kind: "error", reason: "bad_reply_code" });
    expect(one("150 x\r\n")).toEqual({ kind: "error", reason: "bad_reply_code" }); // 1yz is not used in SMTP
    expect(one("260 x\r\n")).toEqual({ kind: "error", reason: "bad_reply_code" });
    expect(one("25\r\n")).toEqual({ kind: "error", reason: "bad_reply_code" });
    expect(one("abc\r\n")).toEqual({ kind: "error", reason: "bad_reply_code" });
    expect(one("250-a\r\n251 b\r\n")).toEqual({ kind: "error", reason: "mixed_reply_codes" });
    expect(one("250 a\nb")).toEqual({ kind: "error", reason: "bare_lf_in_reply" });
    expect(one("250 a\rb")).toEqual({ kind: "error", reason: "bare_cr_in_reply" });
    expect(parseReply(b(`250 ${"x".repeat(60)}\r\n`), 0, { maxLineBytes: 64, maxLines: 10 })).toEqual({ kind: "error", reason: "reply_line_too_long" });
    expect(parseReply(b("250-a\r\n".repeat(3)), 0, { maxLineBytes: 64, maxLines: 3 })).toEqual({ kind: "error", reason: "too_many_reply_lines" });
  });

  test("a start offset", () => {
    expect(parseReply(b("xx220 hi\r\n"), 2)).toEqual({ kind: "reply", reply: { code: 220, enhanced: null, lines: ["hi"] }, size: 8 });
  });
});

describe("EHLO capabilities", () => {
  const caps = (lines: string[]) => ehloCapabilities({ code: 250, enhanced: null, lines: ["mx.example", ...lines] })!;

  test("SIZE, STARTTLS, SMTPUTF8, CHUNKING, Postfix's XCLIENT list, keywords case-insensitive", () => {
    const c = caps(["size 10240000", "STARTTLS", "SmtpUtf8", "CHUNKING", "XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT", "AUTH=LOGIN PLAIN"]);
    expect(c.size).toBe(10240000);
    expect(c.startTls && c.smtpUtf8 && c.chunking).toBe(true);
    expect([...c.xclient!]).toContain("PORT");
    expect(c.keywords.has("AUTH=LOGIN")).toBe(false); // the legacy form is not a keyword
  });

  test("SIZE without a number means no fixed limit", () => {
    expect(caps(["SIZE"]).size).toBe(0);
    expect(caps(["SIZE x"]).size).toBe(0);
  });

  test("not a 250 reply", () => {
    expect(ehloCapabilities({ code: 502, enhanced: null, lines: ["no"] })).toBeNull();
  });
});

describe("builders round-trip through the parsers", () => {
  test("banner", () => {
    expect(dec.decode(buildBanner("mx.example.com"))).toBe("220 mx.example.com ESMTP\r\n");
    expect(parseReply(buildBanner("mx.example.com", "switchyard"))).toEqual({ kind: "reply", reply: { code: 220, enhanced: null, lines: ["mx.example.com switchyard"] }, size: 31 });
  });

  test("EHLO reply from the proxy's capabilities", () => {
    const caps = proxyCapabilities({ maxMessageBytes: 52428800, startTls: true, smtpUtf8: true });
    expect(caps).toEqual(["PIPELINING", "SIZE 52428800", "8BITMIME", "ENHANCEDSTATUSCODES", "STARTTLS", "SMTPUTF8"]);
    expect(proxyCapabilities({ maxMessageBytes: 1000, startTls: false, smtpUtf8: false })).toEqual(["PIPELINING", "SIZE 1000", "8BITMIME", "ENHANCEDSTATUSCODES"]);
    const bytes = buildEhloReply("mx.example.com", "hello client.example", caps);
    expect(dec.decode(bytes)).toBe("250-mx.example.com hello client.example\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n");
    const r = parseReply(bytes);
    if (r.kind !== "reply") throw new Error(r.kind);
    expect(r.size).toBe(bytes.length);
    const parsed = ehloCapabilities(r.reply)!;
    expect([parsed.pipelining, parsed.size, parsed.eightBitMime, parsed.enhancedStatusCodes, parsed.startTls, parsed.smtpUtf8]).toEqual([true, 52428800, true, true, true, true]);
  });

  test("every error reason's reply", () => {
    for (const reason of Object.keys(SMTP_ERRORS) as SmtpErrorReason[]) {
      const e = SMTP_ERRORS[reason];
      const bytes = errorReply(reason);
      expect(dec.decode(bytes)).toBe(`${e.code} ${e.enhanced} ${e.text} (${reason})\r\n`);
      expect(parseReply(bytes)).toEqual({ kind: "reply", reply: { code: e.code, enhanced: e.enhanced, lines: [`${e.enhanced} ${e.text} (${reason})`] }, size: bytes.length });
      expect(String(e.code)[0]).toBe(e.enhanced[0]!);
    }
    expect(dec.decode(errorReply("message_too_large", "limit 1000"))).toBe("552 5.3.4 Message size exceeds fixed limit: limit 1000 (message_too_large)\r\n");
  });

  test("text is made safe: no CR/LF of its own, printable ASCII, lines cut to 512 bytes", () => {
    expect(dec.decode(buildReply(451, ["a\r\nb\u00e9"], "4.3.0"))).toBe("451 4.3.0 a??b?\r\n");
    const long = buildReply(250, ["x".repeat(2000), "y"]);
    const lines = dec.decode(long).split("\r\n");
    expect(lines[0]!.length + 2).toBe(MAX_REPLY_LINE_BYTES);
    expect(lines[1]).toBe("250 y");
  });

  test("bad codes and empty replies are programming errors", () => {
    expect(() => buildReply(99, ["x"])).toThrow(RangeError);
    expect(() => buildReply(250, [])).toThrow(RangeError);
  });
});

describe("XCLIENT (Postfix XCLIENT_README) and xtext (RFC 3461 §4)", () => {
  test("the attributes in order, IPv6 prefixed, IPv4-mapped sent as IPv4", () => {
    const lines = buildXclient({ addr: "192.0.2.7", port: 40000, name: "[UNAVAILABLE]", helo: "client.example", proto: "ESMTP" }).map((l) => dec.decode(l));
    expect(lines).toEqual(["XCLIENT ADDR=192.0.2.7 PORT=40000 NAME=[UNAVAILABLE] HELO=client.example PROTO=ESMTP\r\n"]);
    expect(xclientAddress("2001:db8::1")).toBe("IPV6:2001:db8::1");
    expect(xclientAddress("[2001:db8::1]")).toBe("IPV6:2001:db8::1");
    expect(xclientAddress("::ffff:192.0.2.7")).toBe("192.0.2.7");
    expect(xclientAddress("[TEMPUNAVAIL]")).toBe("[TEMPUNAVAIL]");
  });

  test("only the attributes the server listed after XCLIENT (smtp-sink's capture: NAME HELO)", () => {
    const ehlo = allReplies([PLAIN])[1]!;
    const offered = ehloCapabilities(ehlo)!.xclient;
    const lines = buildXclient({ addr: "192.0.2.7", port: 1, name: "mail.client.example", helo: "client.example" }, offered).map((l) => dec.decode(l));
    // Byte for byte what swaks sent smtp-sink in the capture.
    expect(lines).toEqual([`${dec.decode(fixture("smtp-swaks-xclient-client")).split("\r\n")[1]}\r\n`]);
    expect(buildXclient({ addr: "192.0.2.7" }, new Set())).toEqual([]);
  });

  test("values are xtext: +, = and non-printables as +XX", () => {
    expect(xtextEncode("a+b=c d\u00e9")).toBe("a+2Bb+3Dc+20d+C3+A9");
    expect(xtextDecode("a+2Bb+3Dc+20d+C3+A9")).toBe("a+b=c d\u00e9");
    expect(xtextDecode("a+2b")).toBeNull(); // hex digits are upper case
    expect(xtextDecode("a=b")).toBeNull();
    expect(xtextDecode("a b")).toBeNull();
    expect(xtextDecode("+4")).toBeNull();
  });

  test("split into several commands to stay within 512 bytes; a value too long for any line is sent as unavailable", () => {
    const helo = "h".repeat(255);
    const name = "n".repeat(255);
    const lines = buildXclient({ addr: "192.0.2.7", name, helo });
    expect(lines.length).toBe(2);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(512);
    expect(dec.decode(lines[1]!)).toBe(`XCLIENT HELO=${helo}\r\n`);
    const utf8Helo = "\u00e9".repeat(127); // 254 UTF-8 octets, 762 as xtext
    expect(buildXclient({ helo: utf8Helo }).map((l) => dec.decode(l))).toEqual(["XCLIENT HELO=[UNAVAILABLE]\r\n"]);
  });
});

describe("replyExtent: where a reply ends and its code, nothing decoded", () => {
  test("agrees with parseReply on every reply of the captured sessions, at every prefix", () => {
    for (const stream of [PLAIN, XCLIENT]) {
      for (let at = 0; at < stream.length; ) {
        const full = parseReply(stream, at);
        if (full.kind !== "reply") throw new Error(`fixture does not parse at ${at}`);
        expect(replyExtent(stream, at)).toEqual({ kind: "reply", code: full.reply.code, size: full.size });
        for (let cut = at; cut < at + full.size; cut++) expect(replyExtent(stream.subarray(0, cut), at).kind).toBe("need-more");
        at += full.size;
      }
    }
  });
  test("the same errors as parseReply", () => {
    const enc = new TextEncoder();
    for (const bad of ["250-a\r\n251 b\r\n", "25x ok\r\n", "250 a\rb\r\n", "250 a\n", `250 ${"x".repeat(3000)}\r\n`]) {
      const b = enc.encode(bad);
      expect(replyExtent(b)).toEqual(parseReply(b) as Extract<ReplyParse, { kind: "error" }>);
      expect(replyExtent(b).kind).toBe("error");
    }
  });
});

import { describe, expect, test } from "bun:test";
import { SmtpClientReader, type ClientEvent } from "../../src/smtp/client-reader.ts";
import { fixture } from "../helpers/fixtures.ts";

// The captured swaks sessions (smtp-command-framer.test.ts says how they were captured).
const PLAIN = fixture("smtp-swaks-plain-client");
const PIPELINE = fixture("smtp-swaks-pipeline-client");

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string) => enc.encode(s);

/** Drive a reader as a session would (354 right after DATA); one string per event. */
function drive(pieces: readonly Uint8Array[], reader = new SmtpClientReader({ maxMessageBytes: 1000 })): string[] {
  const out: string[] = [];
  let message = "";
  for (const piece of pieces) {
    expect(reader.push(piece)).toBe(true);
    for (;;) {
      const e: ClientEvent = reader.next();
      if (e.kind === "need-more") break;
      if (e.kind === "command") {
        out.push(`${e.command.kind} ${JSON.stringify(dec.decode(e.line))}`);
        if (e.command.kind === "data") reader.startData();
      } else if (e.kind === "error") {
        out.push(`error ${e.reason}${e.closes ? " closes" : ""}`);
        if (e.closes) return out;
      } else if (e.kind === "data") message += dec.decode(e.bytes);
      else {
        out.push(`message ${JSON.stringify(message + dec.decode(e.bytes))} ${e.messageBytes}${e.tooLarge ? " too-large" : ""}`);
        message = "";
      }
    }
  }
  return out;
}

function everyWay(input: Uint8Array, make?: () => SmtpClientReader): string[] {
  const whole = drive([input], make?.());
  expect(drive(Array.from(input, (_, i) => input.subarray(i, i + 1)), make?.())).toEqual(whole);
  for (let k = 0; k <= input.length; k++) expect(drive([input.subarray(0, k), input.subarray(k)], make?.())).toEqual(whole);
  return whole;
}

describe("captured sessions, whole, one byte at a time, split at every point", () => {
  const body = "Subject: fixture\r\n\r\nline one\r\n..leading dot\r\n...two dots\r\nlast\r\n\r\n.\r\n";
  const size = body.length - 3 - 2; // RFC 1870: without ".CRLF" and the two stuffing dots

  test("plain", () => {
    expect(everyWay(PLAIN)).toEqual([
      `ehlo "EHLO client.example\\r\\n"`,
      `mail "MAIL FROM:<alice@a.example>\\r\\n"`,
      `rcpt "RCPT TO:<bob@B.Example>\\r\\n"`,
      `rcpt "RCPT TO:<carol@b.example>\\r\\n"`,
      `data "DATA\\r\\n"`,
      `message ${JSON.stringify(body)} ${size}`,
      `quit "QUIT\\r\\n"`,
    ]);
  });

  test("pipelined (MAIL, RCPT, RCPT, DATA in one read)", () => {
    expect(everyWay(PIPELINE)).toEqual([
      `ehlo "EHLO client.example\\r\\n"`,
      `mail "MAIL FROM:<>\\r\\n"`,
      `rcpt "RCPT TO:<bob@b.example>\\r\\n"`,
      `rcpt "RCPT TO:<dave@c.example>\\r\\n"`,
      `data "DATA\\r\\n"`,
      `message ${JSON.stringify(body)} ${size}`,
      `quit "QUIT\\r\\n"`,
    ]);
  });
});

describe("the session loop's cases", () => {
  test("a message and the next transaction in one read", () => {
    expect(everyWay(b("DATA\r\nhi\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<a@b.example>\r\n"))).toEqual([
      `data "DATA\\r\\n"`, `message "hi\\r\\n.\\r\\n" 4`, `mail "MAIL FROM:<>\\r\\n"`, `rcpt "RCPT TO:<a@b.example>\\r\\n"`,
    ]);
  });

  test("an over-long line answers 500 and the session goes on in step", () => {
    expect(everyWay(b(`NOOP ${"x".repeat(600)}\r\nQUIT\r\n`))).toEqual(["error line_too_long", `quit "QUIT\\r\\n"`]);
  });

  test("a bad command answers and goes on; a bare LF closes", () => {
    expect(everyWay(b("FOO\r\nMAIL FROM:a\r\nRSET\r\nNOOP\nQUIT\r\n"))).toEqual(["error unknown_command", "error bad_reverse_path", `rset "RSET\\r\\n"`, "error bare_lf closes"]);
  });

  test("smuggling inside DATA closes the session before the smuggled command is read", () => {
    expect(everyWay(b("DATA\r\nhi\n.\nMAIL FROM:<evil@x.example>\r\n"))).toEqual([`data "DATA\\r\\n"`, "error bare_lf_in_data closes"]);
  });

  test("a closing error is repeated by every later next()", () => {
    const r = new SmtpClientReader();
    r.push(b("NOOP\rx\r\nQUIT\r\n"));
    expect(r.next()).toEqual({ kind: "error", reason: "bare_cr", closes: true });
    r.push(b("QUIT\r\n"));
    expect(r.next()).toEqual({ kind: "error", reason: "bare_cr", closes: true });
    expect(r.pending).toBe(0);
  });

  test("too large: the message is still read to its end", () => {
    const make = () => new SmtpClientReader({ maxMessageBytes: 5 });
    expect(everyWay(b("DATA\r\n123456\r\n.\r\nQUIT\r\n"), make)).toEqual([`data "DATA\\r\\n"`, `message "123456\\r\\n.\\r\\n" 8 too-large`, `quit "QUIT\\r\\n"`]);
  });

  test("STARTTLS: what the client pipelined after it is dropped, not read as commands (CVE-2011-0411)", () => {
    const r = new SmtpClientReader();
    r.push(b("STARTTLS\r\nMAIL FROM:<injected@x.example>\r\n"));
    const e = r.next();
    expect(e.kind === "command" && e.command.kind).toBe("starttls");
    expect(r.discardPending()).toBe("MAIL FROM:<injected@x.example>\r\n".length);
    expect(r.next()).toEqual({ kind: "need-more" });
  });

  test("commands are not taken from the body before the session starts the message", () => {
    const r = new SmtpClientReader();
    r.push(b("DATA\r\nQUIT\r\n"));
    expect(r.next().kind).toBe("command");
    expect(r.inData).toBe(false);
    r.startData();
    expect(r.inData).toBe(true);
    const e = r.next();
    expect(e.kind === "data" && dec.decode(e.bytes)).toBe("QUIT\r\n");
  });

  test("the queue is bounded: a push past one line plus one read is refused", () => {
    const r = new SmtpClientReader({ lineLimit: 512, maxReadBytes: 1000 });
    expect(r.push(new Uint8Array(1000))).toBe(true);
    expect(r.push(new Uint8Array(513))).toBe(false);
  });
});

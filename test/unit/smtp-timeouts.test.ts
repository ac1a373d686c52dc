import { describe, expect, test } from "bun:test";
import { SmtpSession } from "../../src/smtp/session.ts";
import { timeoutDue } from "../../src/smtp/timeouts.ts";
import type { SmtpListenerConfig } from "../../src/config/types.ts";

const CONFIG: SmtpListenerConfig = { hostname: "mx.test", maxMessageBytes: 1000, requireTls: false, smtpUtf8: false, maxCommandsBeforeRouting: 50, commandTimeoutMs: 300, dataTimeoutMs: 200 };

function session(phase: SmtpSession["phase"]): SmtpSession {
  const s = new SmtpSession(CONFIG);
  s.phase = phase;
  return s;
}

describe("which RFC 5321 §4.5.3.2 timeout a silent session has passed", () => {
  test("before routing: the command timeout", () => {
    const s = session("dialogue");
    expect(timeoutDue(s, 300)).toBeNull();
    expect(timeoutDue(s, 301)).toBe("command_timeout");
  });

  test("relaying with no reply owed: the command timeout", () => {
    const s = session("relay");
    expect(timeoutDue(s, 250)).toBeNull(); // past the data timeout, not in data
    expect(timeoutDue(s, 301)).toBe("command_timeout");
  });

  test("inside a message body: the data timeout", () => {
    const s = session("relay");
    s.reader.startData();
    expect(timeoutDue(s, 200)).toBeNull();
    expect(timeoutDue(s, 201)).toBe("data_timeout");
  });

  test("while the backend owes a reply (or DATA's 354), the client is not timed", () => {
    const owing = session("relay");
    owing.owed.push({ kind: "rcpt" });
    expect(timeoutDue(owing, 10_000)).toBeNull();
    const holding = session("relay");
    holding.holding = true;
    expect(timeoutDue(holding, 10_000)).toBeNull();
  });

  test("the STARTTLS handshake and the backend handshake are timed elsewhere", () => {
    expect(timeoutDue(session("tls-hello"), 10_000)).toBeNull();
    expect(timeoutDue(session("backend"), 10_000)).toBeNull();
  });
});

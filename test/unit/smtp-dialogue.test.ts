/**
 * The smtp module's dialogue before routing (src/smtp/module.ts sniff, src/smtp/dialogue.ts), over a
 * stand-in connection: the pipelined command stream swaks --pipeline sends (as seen in its
 * transcript through the proxy), fed whole, one byte at a time and split at every point, must give
 * the same replies, the same facts and the same step; STARTTLS discards what was pipelined after it.
 */
import { describe, expect, test } from "bun:test";
import { ByteQueue } from "../../src/net/byte-queue.ts";
import { ConnFacts } from "../../src/protocol/facts.ts";
import { RouteTable } from "../../src/route/table.ts";
import { SMTP } from "../../src/smtp/module.ts";
import { SmtpSession } from "../../src/smtp/session.ts";
import type { RouteConfig, SmtpListenerConfig } from "../../src/config/types.ts";
import type { Conn } from "../../src/proxy/conn.ts";

const CONFIG: SmtpListenerConfig = { hostname: "mx.test", maxMessageBytes: 1000, requireTls: false, smtpUtf8: false, maxCommandsBeforeRouting: 50, commandTimeoutMs: 300_000, dataTimeoutMs: 180_000 };

function route(name: string, rcptDomain: string[] | null): { config: RouteConfig } {
  return {
    config: {
      name, upstreams: [], balance: "round-robin", respond: null, rateLimit: null, terminateTls: false, cert: null, mtls: null, upstreamTls: null, xclient: false,
      match: rcptDomain === null ? null : { clientCidr: [], sni: [], alpn: [], database: [], user: [], ehlo: [], rcptDomain },
    },
  };
}

/** Just what the dialogue touches of a connection: facts, counters, the client's write, the listener's table and certificates. */
function standIn(withCert: boolean) {
  const written: Uint8Array[] = [];
  const conn = {
    facts: new ConnFacts(), bytesIn: 0, bytesOut: 0, clientIp: "127.0.0.1",
    client: { write: (b: Uint8Array) => { written.push(b.slice()); return b.length; } },
    listener: {
      config: { smtp: CONFIG },
      certs: { forName: () => (withCert ? {} : null) },
      state: { resolver: null },
      table: new RouteTable([route("b", ["b.example"])]),
    },
    intake: { state: new SmtpSession(CONFIG) },
  } as unknown as Conn;
  return { conn, replies: () => Buffer.concat(written).toString("latin1") };
}

/** Feed `pieces` as separate reads; the replies, the last step, the facts and the bytes not yet read as commands. */
function run(pieces: Uint8Array[], withCert = false) {
  const { conn, replies } = standIn(withCert);
  const collected = new ByteQueue(64 * 1024, "test");
  let step = "";
  let unfed = 0; // bytes after the routing step: the pipeline hands them to the module later (relayClientData)
  for (const p of pieces) {
    if (step !== "" && step !== "need-more") {
      unfed += p.length;
      continue;
    }
    collected.push(p);
    step = SMTP.sniff!(conn, collected, false).kind;
  }
  const s = conn.intake!.state as SmtpSession;
  const f = conn.facts!;
  return { replies: replies(), step, facts: [f.ehlo, f.mailFrom, f.rcptDomain], pending: s.reader.pending + unfed, phase: s.phase };
}

const enc = (t: string) => Buffer.from(t, "latin1");
const splits = (bytes: Uint8Array) => Array.from({ length: bytes.length - 1 }, (_, i) => [bytes.subarray(0, i + 1), bytes.subarray(i + 1)]);
const bytewise = (bytes: Uint8Array) => Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));

describe("pipelined dialogue", () => {
  const stream = enc("EHLO Client.Test\r\nNOOP\r\nRSET\r\nMAIL FROM:<s@x.test> SIZE=10\r\nRCPT TO:<a@nowhere.example>\r\nRCPT TO:<b@B.example>\r\nDATA\r\n");
  const whole = run([stream]);

  test("answered in order; the routing RCPT is left to the backend, DATA waits in the reader", () => {
    expect(whole.replies).toBe(
      "250-mx.test at your service\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n" +
      "250 2.0.0 OK\r\n250 2.0.0 OK\r\n250 2.1.0 Sender OK\r\n550 5.7.1 Relay access denied (no_route)\r\n");
    expect(whole.step).toBe("route");
    expect(whole.facts).toEqual(["client.test", "s@x.test", "b.example"]);
    expect(whole.pending).toBe("DATA\r\n".length);
  });

  test("the same at every split point and byte by byte", () => {
    for (const pieces of splits(stream)) expect(run(pieces)).toEqual(whole);
    expect(run(bytewise(stream))).toEqual(whole);
  });
});

describe("refusals before routing", () => {
  test("SIZE over the limit 552, MAIL before EHLO 503, RCPT before MAIL 503, XCLIENT 550, AUTH 502", () => {
    const r = run([enc("MAIL FROM:<s@x.test>\r\nHELO h.test\r\nRCPT TO:<b@b.example>\r\nMAIL FROM:<s@x.test> SIZE=1001\r\nXCLIENT ADDR=1.2.3.4\r\nAUTH PLAIN\r\n")]);
    expect(r.replies.split("\r\n").slice(0, -1).map((l) => l.slice(0, 9))).toEqual(["503 5.5.1", "250 mx.te", "503 5.5.1", "552 5.3.4", "550 5.7.0", "502 5.5.1"]);
    expect(r.step).toBe("need-more");
  });

  test("a bare LF in a command: 500 and the session closes", () => {
    const r = run([enc("EHLO h.test\nMAIL FROM:<s@x.test>\r\n")]);
    expect(r.replies).toStartWith("500 5.5.2 Bare LF received");
    expect(r.step).toBe("refuse");
  });

  test("more commands than maxCommandsBeforeRouting: 421", () => {
    const r = run([enc("NOOP\r\n".repeat(51))]);
    expect(r.replies.endsWith("421 4.7.0 Too many commands before a recipient (too_many_commands)\r\n")).toBe(true);
    expect(r.step).toBe("refuse");
  });
});

describe("STARTTLS", () => {
  test("offered only with a certificate; what was pipelined after it is dropped and the hello is awaited", () => {
    expect(run([enc("EHLO h.test\r\n")]).replies).not.toContain("STARTTLS");
    const r = run([enc("EHLO h.test\r\nSTARTTLS\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<b@b.example>\r\n")], true);
    expect(r.replies).toContain("250 STARTTLS\r\n");
    expect(r.replies.endsWith("220 2.0.0 Ready to start TLS\r\n")).toBe(true);
    expect(r.pending).toBe(0);
    expect(r.phase).toBe("tls-hello");
    expect(r.facts).toEqual(["h.test", null, null]); // the pipelined MAIL and RCPT were not taken
  });

  test("without a certificate STARTTLS gets 454 and the dialogue goes on", () => {
    const r = run([enc("EHLO h.test\r\nSTARTTLS\r\nNOOP\r\n")]);
    expect(r.replies).toContain("454 4.7.0 TLS not available (no_certificate)\r\n250 2.0.0 OK\r\n");
  });
});

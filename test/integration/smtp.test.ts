/**
 * protocol "smtp" with real peers on loopback: swaks as the client (plain, --pipeline, --tls, a
 * 20 MB attachment), two Postfix smtp-sink backends (routing by recipient domain and by EHLO), a
 * Postfix smtpd in a temp config directory for XCLIENT (its log shows the client's real address),
 * and a raw client for what swaks cannot send: a body whose ".\r\n"-like sequences and terminator
 * are split across TCP segments, and bare LF / bare CR in DATA (SMTP smuggling).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startProxy, writeConfig, tempDir, eventually, type RunningProxy } from "../helpers/proxy.ts";
import { makePki } from "../helpers/certs.ts";
import { serve, type Server } from "../helpers/peers.ts";
import { RawSmtp, postfixAvailable, startPostfix, startSink, swaks, type PostfixInstance, type Sink } from "../helpers/smtp-peers.ts";

let proxy: RunningProxy;
let sinkB: Sink; // rcptDomain b.example, *.b.example, and ehlo *.partner.example
let sinkDefault: Sink;
let postfix: PostfixInstance | null = null;
let mx = 0;
let sub = 0;
let strict = 0;
let plainBackend: Server; // answers like a server without XCLIENT (smtp-sink offers it)

beforeAll(async () => {
  sinkB = await startSink();
  sinkDefault = await startSink();
  plainBackend = serve({
    open(s: any) { s.write("220 plain.test ESMTP\r\n"); },
    data(s: any, d: Uint8Array) { s.write(Buffer.from(d).toString().startsWith("EHLO") ? "250-plain.test\r\n250 PIPELINING\r\n" : "250 2.0.0 OK\r\n"); },
  } as any);
  if (postfixAvailable()) postfix = await startPostfix("xc.example");
  const pki = makePki();
  const cert = pki.issue("mx", ["mx.test"]);
  const routes = [
    ...(postfix ? [{ name: "xc", match: { rcptDomain: "xc.example" }, upstreams: [`127.0.0.1:${postfix.port}`], xclient: true }] : []),
    { name: "b", match: { rcptDomain: ["b.example", "*.b.example"] }, upstreams: [`127.0.0.1:${sinkB.port}`] },
    { name: "partner", match: { ehlo: "*.partner.example" }, upstreams: [`127.0.0.1:${sinkB.port}`] },
    { name: "default", upstreams: [`127.0.0.1:${sinkDefault.port}`] },
  ];
  proxy = await startProxy(["serve", "-c", writeConfig({
    log: { access: "stdout" },
    listeners: [
      { name: "mx", listen: "127.0.0.1:0", protocol: "smtp", defaultCert: cert, smtp: { hostname: "mx.test", maxMessageBytes: 30_000_000 }, routes },
      { name: "sub", listen: "127.0.0.1:0", protocol: "smtp", defaultCert: cert, smtp: { hostname: "sub.test", requireTls: true }, routes },
      // No default route, a small size limit, and an XCLIENT route to a backend that does not offer it.
      { name: "strict", listen: "127.0.0.1:0", protocol: "smtp", smtp: { hostname: "strict.test", maxMessageBytes: 1000 }, routes: [
        { name: "b", match: { rcptDomain: "b.example" }, upstreams: [`127.0.0.1:${sinkB.port}`] },
        { name: "noxc", match: { rcptDomain: "noxc.example" }, upstreams: [`127.0.0.1:${plainBackend.port}`], xclient: true },
      ] },
    ],
  })]);
  const ports = proxy.addresses.map((a) => Number(a.slice(a.lastIndexOf(":") + 1)));
  mx = ports[0]!;
  sub = ports[1]!;
  strict = ports[2]!;
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await sinkB?.stop();
  await sinkDefault?.stop();
  await postfix?.stop();
  plainBackend?.stop();
});

/** Messages a sink got whose recipient line names `rcpt`. */
const to = (sink: Sink, rcpt: string) => sink.messages().filter((m) => m.includes(`X-Rcpt-Args: <${rcpt}>`));

describe("swaks through the proxy", () => {
  test("plain: the proxy's banner and EHLO, the backend's RCPT and DATA replies; routed by recipient domain", async () => {
    const r = await swaks(mx, ["--from", "s@x.test", "--to", "one@b.example", "--helo", "client.test"]);
    expect(r.exitCode).toBe(0);
    expect(r.output).toContain("<-  220 mx.test ESMTP");
    expect(r.output).toMatch(/<-  250-PIPELINING\n<-  250-SIZE 30000000\n<-  250-8BITMIME\n<-  250-ENHANCEDSTATUSCODES\n<-  250 STARTTLS/);
    expect(r.output).toContain("<-  250 2.1.5 Ok"); // smtp-sink's answer to the RCPT, passed on
    expect(to(sinkB, "one@b.example")).toHaveLength(1);
    expect(to(sinkB, "one@b.example")[0]).toContain("X-Helo-Args: client.test"); // the backend heard the client's EHLO
    await eventually(() => proxy.accessLog().some((l) => l.rcptDomain === "b.example"), 5000, "access log");
    expect(proxy.accessLog().find((l) => l.rcptDomain === "b.example")).toMatchObject({
      protocol: "smtp", route: "b", ehlo: "client.test", mailFrom: "s@x.test", relay: "userspace", reason: "done",
    });
  });

  test("a *.b.example pattern matches one label; other domains go to the default route", async () => {
    expect((await swaks(mx, ["--from", "s@x.test", "--to", "two@eu.b.example"])).exitCode).toBe(0);
    expect((await swaks(mx, ["--from", "s@x.test", "--to", "three@deep.eu.b.example"])).exitCode).toBe(0);
    expect((await swaks(mx, ["--from", "s@x.test", "--to", "four@c.example", "--helo", "client.test"])).exitCode).toBe(0);
    expect(to(sinkB, "two@eu.b.example")).toHaveLength(1);
    expect(to(sinkDefault, "three@deep.eu.b.example")).toHaveLength(1);
    expect(to(sinkDefault, "four@c.example")).toHaveLength(1);
  });

  test("routed by EHLO domain", async () => {
    expect((await swaks(mx, ["--from", "s@x.test", "--to", "five@c.example", "--helo", "relay1.partner.example"])).exitCode).toBe(0);
    expect(to(sinkB, "five@c.example")).toHaveLength(1);
    expect(to(sinkDefault, "five@c.example")).toHaveLength(0);
  });

  test("--pipeline: replies in order; a recipient of another route gets 451 4.3.0 and the rest is delivered", async () => {
    const r = await swaks(mx, ["--pipeline", "--from", "s@x.test", "--to", "six@b.example,seven@c.example,eight@eu.b.example", "--helo", "client.test"]);
    expect(r.exitCode).toBe(0);
    const replies = r.output.split("\n").filter((l) => /^<[-*~]/.test(l)).map((l) => l.slice(4, 7));
    // banner, EHLO (5 lines), then MAIL, RCPT, RCPT, RCPT, DATA in order, then the message and QUIT.
    expect(replies.slice(7, 12)).toEqual(["250", "250", "451", "250", "354"]);
    expect(r.output).toContain("451 4.3.0 Recipient served by another route");
    const got = to(sinkB, "six@b.example");
    expect(got).toHaveLength(1);
    expect(got[0]).toContain("X-Rcpt-Args: <eight@eu.b.example>");
    expect(got[0]).not.toContain("seven@c.example>\n");
  });

  test("--tls: STARTTLS with the listener's certificate, EHLO again, then MAIL", async () => {
    const r = await swaks(sub, ["--tls", "--from", "s@x.test", "--to", "nine@b.example", "--helo", "client.test"]);
    expect(r.exitCode).toBe(0);
    expect(r.output).toContain("<-  220 2.0.0 Ready to start TLS");
    expect(r.output).toContain('TLS peer DN="/CN=mx.test"');
    expect(r.output).not.toMatch(/<~  250 STARTTLS/); // not offered again inside TLS (RFC 3207 §4.2)
    expect(to(sinkB, "nine@b.example")).toHaveLength(1);
    await eventually(() => proxy.accessLog().some((l) => l.listener === "sub" && l.tls === "terminate" && l.route === "b"), 5000, "access log");
  });

  test("requireTls: MAIL before STARTTLS gets 530", async () => {
    const r = await swaks(sub, ["--from", "s@x.test", "--to", "ten@b.example"]);
    expect(r.exitCode).not.toBe(0);
    expect(r.output).toContain("530 5.7.0 Must issue a STARTTLS command first (tls_required)");
    expect(to(sinkB, "ten@b.example")).toHaveLength(0);
  });

  test("a 20 MB attachment arrives whole", async () => {
    const dir = tempDir("switchyard-smtp-");
    const file = join(dir, "big.bin");
    writeFileSync(file, Buffer.alloc(15_000_000, 0).map((_, i) => (i * 2654435761) >>> 24));
    const r = await swaks(mx, ["--from", "s@x.test", "--to", "big@b.example", "--attach", `@${file}`, "--suppress-data"]);
    expect(r.exitCode).toBe(0);
    const got = to(sinkB, "big@b.example");
    expect(got).toHaveLength(1);
    expect(got[0]!.length).toBeGreaterThan(20_000_000);
  }, 60_000);

  test.skipIf(!postfixAvailable())("XCLIENT: Postfix sees the client's own address, not the proxy's", async () => {
    const r = await swaks(mx, ["--from", "s@x.test", "--to", "x@xc.example", "--helo", "client.test", "--local-interface", "127.0.0.7"]);
    expect(r.exitCode).toBe(0);
    expect(r.output).toMatch(/250 2\.0\.0 Ok: queued as/);
    await eventually(() => /disconnect from unknown\[127\.0\.0\.7\]/.test(postfix!.log()), 10_000, "postfix log");
    // The proxy connected from 127.0.0.1; after XCLIENT, smtpd names the client 127.0.0.7 and EHLO came twice.
    expect(postfix!.log()).toMatch(/disconnect from unknown\[127\.0\.0\.7\] ehlo=2 /);
  }, 30_000);
});

describe("raw dialogues", () => {
  async function toData(port: number, rcpt: string): Promise<RawSmtp> {
    const c = await RawSmtp.open(port);
    expect(await c.reply()).toStartWith("220 ");
    c.send(`EHLO raw.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<${rcpt}>\r\nDATA\r\n`);
    expect(await c.reply()).toStartWith("250-mx.test");
    expect(await c.reply()).toStartWith("250 2.1.0");
    expect(await c.reply()).toStartWith("250 "); // the backend's
    expect(await c.reply()).toStartWith("354 ");
    return c;
  }

  test("'.\\r\\n'-like sequences and the terminator split across segments: the message arrives whole", async () => {
    const c = await toData(mx, "split@b.example");
    const pieces = ["Subject: split\r\n\r\nfirst\r", "\n", ".", ".\r\n", "..dots\r\n.", "x\r\nlast line\r", "\n.", "\r", "\n"];
    for (const p of pieces) {
      c.send(p);
      await Bun.sleep(30); // separate segments
    }
    expect(await c.reply()).toStartWith("250 ");
    c.send("QUIT\r\n");
    expect(await c.reply()).toStartWith("221 ");
    const got = to(sinkB, "split@b.example");
    expect(got).toHaveLength(1);
    expect(got[0]).toMatch(/first\r?\n\.?\r?\n\.?dots\r?\n\.?x\r?\nlast line/);
  });

  test("two messages in one session; the end of the first, the next MAIL, RCPT and DATA pipelined in one write", async () => {
    const c = await toData(mx, "first@b.example");
    c.send("Subject: 1\r\n\r\none\r\n.\r\nRSET\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<second@b.example>\r\nDATA\r\n");
    for (const code of ["250", "250", "250", "250", "354"]) expect((await c.reply()).slice(0, 3)).toBe(code);
    c.send("Subject: 2\r\n\r\ntwo\r\n.\r\nQUIT\r\n");
    expect(await c.reply()).toStartWith("250 ");
    expect(await c.reply()).toStartWith("221 ");
    await c.closed();
    expect(to(sinkB, "first@b.example")).toHaveLength(1);
    expect(to(sinkB, "second@b.example")).toHaveLength(1);
    expect(to(sinkB, "second@b.example")[0]).toContain("two");
  });

  test("bare LF in DATA (SMTP smuggling) is refused with 550 and the message is not delivered", async () => {
    const c = await toData(mx, "smuggle@b.example");
    c.send("Subject: a\r\n\r\nhello\n.\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@b.example>\r\nDATA\r\nforged\r\n.\r\n");
    expect(await c.reply()).toStartWith("550 5.5.2 Bare LF in message data");
    await c.closed();
    await Bun.sleep(200);
    expect(to(sinkB, "smuggle@b.example")).toHaveLength(0);
    expect(to(sinkB, "victim@b.example")).toHaveLength(0);
  });

  test("bare CR in DATA is refused likewise", async () => {
    const c = await toData(mx, "cr@b.example");
    c.send("Subject: a\r\n\r\nhello\r.\r");
    expect(await c.reply()).toStartWith("550 5.5.2 Bare CR in message data");
    await c.closed();
    await Bun.sleep(200);
    expect(to(sinkB, "cr@b.example")).toHaveLength(0);
  });

  test("before routing: NOOP, RSET, HELO answered locally, pipelined, in order; an over-long line gets 500 and the session goes on", async () => {
    const c = await RawSmtp.open(mx);
    expect(await c.reply()).toBe("220 mx.test ESMTP\r\n");
    c.send(`NOOP\r\nHELO raw.test\r\n${"X".repeat(600)}\r\nRSET\r\nMAIL FROM:<s@x.test>\r\nDATA\r\nQUIT\r\n`);
    expect(await c.reply()).toBe("250 2.0.0 OK\r\n");
    expect(await c.reply()).toBe("250 mx.test\r\n");
    expect(await c.reply()).toStartWith("500 5.5.2 Line too long");
    expect(await c.reply()).toBe("250 2.0.0 OK\r\n");
    expect(await c.reply()).toStartWith("250 2.1.0");
    expect(await c.reply()).toStartWith("503 5.5.1");
    expect(await c.reply()).toBe("221 2.0.0 Bye\r\n");
    await c.closed();
  });

  test("STARTTLS: what was pipelined after it is discarded (CVE-2011-0411), and inside TLS EHLO is required again", async () => {
    // Python's ssl over the same socket: the plaintext bytes after STARTTLS must get no reply, in plaintext or in TLS.
    const script = [
      "import socket, ssl, sys",
      `s = socket.create_connection(("127.0.0.1", ${mx}), timeout=5)`,
      "buf = s.recv(1000)",
      'buf = b""',
      's.sendall(b"EHLO raw.test\\r\\nSTARTTLS\\r\\nRSET\\r\\nMAIL FROM:<evil@x.test>\\r\\n")',
      'while b"220 2.0.0" not in buf: buf += s.recv(1000)',
      "ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE",
      't = ctx.wrap_socket(s, server_hostname="mx.test")',
      't.sendall(b"MAIL FROM:<s@x.test>\\r\\n")',
      "sys.stdout.write(repr(buf) + '\\n' + repr(t.recv(1000)) + '\\n')",
    ].join("\n");
    const proc = Bun.spawn(["/usr/bin/python3", "-c", script], { stdout: "pipe", stderr: "pipe" });
    const out = await new Response(proc.stdout).text();
    expect(await proc.exited).toBe(0);
    const [plain, inTls] = out.trim().split("\n");
    expect(plain).toMatch(/250 STARTTLS\\r\\n220 2\.0\.0 Ready to start TLS\\r\\n'$/); // nothing after the 220
    expect(inTls).toContain("503 5.5.1 Send EHLO or HELO first"); // not a 250 for the discarded RSET or MAIL
  });

  test("RCPT before MAIL gets 503 and the session goes on", async () => {
    const c = await RawSmtp.open(mx);
    await c.reply();
    c.send("EHLO raw.test\r\nRCPT TO:<a@b.example>\r\nQUIT\r\n");
    await c.reply();
    expect(await c.reply()).toStartWith("503 5.5.1 Send MAIL first");
    expect(await c.reply()).toStartWith("221 ");
  });
});

describe("refusals", () => {
  test("a recipient no route serves gets 550 and the dialogue goes on; no STARTTLS without a certificate", async () => {
    const c = await RawSmtp.open(strict);
    await c.reply();
    c.send("EHLO raw.test\r\nSTARTTLS\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@nowhere.example>\r\nRCPT TO:<ok@b.example>\r\nQUIT\r\n");
    expect(await c.reply()).not.toContain("STARTTLS");
    expect(await c.reply()).toStartWith("454 4.7.0 TLS not available");
    expect(await c.reply()).toStartWith("250 2.1.0");
    expect(await c.reply()).toBe("550 5.7.1 Relay access denied (no_route)\r\n");
    expect(await c.reply()).toStartWith("250 "); // smtp-sink's, for ok@b.example
    expect(await c.reply()).toStartWith("221 ");
  });

  test("MAIL with SIZE over the limit gets 552; a body over it gets 552 and the session closes, nothing delivered", async () => {
    const c = await RawSmtp.open(strict);
    await c.reply();
    c.send("EHLO raw.test\r\nMAIL FROM:<s@x.test> SIZE=5000\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<big2@b.example>\r\nDATA\r\n");
    expect(await c.reply()).toContain("SIZE 1000");
    expect(await c.reply()).toStartWith("552 5.3.4");
    expect(await c.reply()).toStartWith("250 2.1.0");
    expect(await c.reply()).toStartWith("250 ");
    expect(await c.reply()).toStartWith("354 ");
    c.send(`Subject: big\r\n\r\n${"y".repeat(2000)}\r\n.\r\n`);
    expect(await c.reply()).toStartWith("552 5.3.4 Message size exceeds fixed limit of 1000 bytes");
    await c.closed();
    await Bun.sleep(200);
    expect(to(sinkB, "big2@b.example")).toHaveLength(0);
  });

  test("an xclient route whose backend does not offer XCLIENT: 421 naming the reason", async () => {
    const c = await RawSmtp.open(strict);
    await c.reply();
    c.send("EHLO raw.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@noxc.example>\r\n");
    await c.reply();
    await c.reply();
    expect(await c.reply()).toMatch(/^421 4\.3\.0 strict\.test closing connection: .*\(upstream_no_xclient\)\r\n$/);
    await c.closed();
    await eventually(() => proxy.accessLog().some((l) => l.reason === "upstream_no_xclient"), 5000, "access log");
  });
});

describe("no configuration file", () => {
  test("SMTP_BACKEND_ENDPOINT and SMTP_PORT make `serve smtp` a proxy to that backend", async () => {
    const port = (await import("../helpers/peers.ts")).freePort();
    const p = await startProxy(["serve", "smtp"], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SMTP_BACKEND_ENDPOINT: `127.0.0.1:${sinkDefault.port}`, SMTP_PORT: String(port), SMTP_SKIP_VALIDATION: "true" },
    });
    try {
      const r = await swaks(port, ["--from", "s@x.test", "--to", "env@anything.example"]);
      expect(r.exitCode).toBe(0);
      expect(to(sinkDefault, "env@anything.example")).toHaveLength(1);
    } finally {
      await p.stop();
    }
  });
});

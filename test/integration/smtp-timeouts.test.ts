/**
 * protocol "smtp": the RFC 5321 §4.5.3.2 timeouts (smtp.commandTimeoutMs, smtp.dataTimeoutMs) and
 * the access log's `rcpt` count, with Postfix's smtp-sink as the backend, raw clients for the
 * silences and swaks for a pipelined transaction with recipients of two routes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startProxy, writeConfig, eventually, type RunningProxy } from "../helpers/proxy.ts";
import { RawSmtp, startSink, swaks, type Sink } from "../helpers/smtp-peers.ts";

let proxy: RunningProxy;
let sink: Sink;
let other: Sink;

beforeAll(async () => {
  sink = await startSink();
  other = await startSink();
  proxy = await startProxy(["serve", "-c", writeConfig({
    log: { access: "stdout" },
    listeners: [{
      name: "mx", listen: "127.0.0.1:0", protocol: "smtp", handshakeTimeoutMs: 60_000,
      smtp: { hostname: "mx.test", commandTimeoutMs: 500, dataTimeoutMs: 400 },
      routes: [
        { name: "o", match: { rcptDomain: "o.example" }, upstreams: [`127.0.0.1:${other.port}`] },
        { name: "main", upstreams: [`127.0.0.1:${sink.port}`] },
      ],
    }],
  })]);
}, 30_000);

afterAll(async () => {
  await proxy?.stop();
  await sink?.stop();
  await other?.stop();
});

/** The access-log record of the connection that ended with `reason` after `since` records. */
async function record(reason: string, since: number): Promise<Record<string, unknown>> {
  await eventually(() => proxy.accessLog().slice(since).some((l) => l.reason === reason), 5000, `a record with reason ${reason}`);
  return proxy.accessLog().slice(since).find((l) => l.reason === reason)!;
}

const TIMEOUT_REPLY = (reason: string) => new RegExp(`^421 4\\.4\\.2 mx\\.test Error: timeout exceeded \\(${reason}\\)\\r\\n$`);

describe("RFC 5321 §4.5.3.2 timeouts", () => {
  test("before routing: a silent client gets 421 4.4.2 after commandTimeoutMs, not handshakeTimeoutMs", async () => {
    const since = proxy.accessLog().length;
    const c = await RawSmtp.open(proxy.port);
    expect(await c.reply()).toStartWith("220 mx.test");
    c.send("EHLO client.test\r\n");
    await c.reply();
    const t0 = performance.now();
    expect(await c.reply(5000)).toMatch(TIMEOUT_REPLY("command_timeout"));
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThan(450);
    expect(ms).toBeLessThan(2500);
    await c.closed();
    expect(await record("command_timeout", since)).toMatchObject({ ehlo: "client.test", rcpt: 0 });
  });

  test("after routing, with no reply owed: 421 command_timeout; the accepted recipient is counted", async () => {
    const since = proxy.accessLog().length;
    const c = await RawSmtp.open(proxy.port);
    await c.reply();
    c.send("EHLO client.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@m.example>\r\n");
    expect(await c.reply()).toStartWith("250-mx.test");
    expect(await c.reply()).toStartWith("250 2.1.0");
    expect(await c.reply()).toStartWith("250 2.1.5"); // smtp-sink's, through the proxy
    c.send("RCPT TO:<b@m.example>\r\n");
    expect(await c.reply()).toStartWith("250 2.1.5");
    expect(await c.reply(5000)).toMatch(TIMEOUT_REPLY("command_timeout"));
    await c.closed();
    expect(await record("command_timeout", since)).toMatchObject({ route: "main", rcpt: 2 });
  });

  test("inside a message body: 421 data_timeout after dataTimeoutMs, and the backend keeps nothing", async () => {
    const since = proxy.accessLog().length;
    const before = sink.messages().length;
    const c = await RawSmtp.open(proxy.port);
    await c.reply();
    c.send("EHLO client.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<c@m.example>\r\nDATA\r\n");
    for (let i = 0; i < 3; i++) await c.reply();
    expect(await c.reply()).toStartWith("354");
    c.send("Subject: half\r\n\r\nthe first line\r\n");
    const t0 = performance.now();
    expect(await c.reply(5000)).toMatch(TIMEOUT_REPLY("data_timeout"));
    expect(performance.now() - t0).toBeGreaterThan(350);
    await c.closed();
    expect(await record("data_timeout", since)).toMatchObject({ route: "main", rcpt: 1 });
    await Bun.sleep(200);
    expect(sink.messages().length).toBe(before);
  });

  test("a slow but steady body is not cut: each read restarts the data timeout", async () => {
    const before = sink.messages().length;
    const c = await RawSmtp.open(proxy.port);
    await c.reply();
    c.send("EHLO client.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<d@m.example>\r\nDATA\r\n");
    for (let i = 0; i < 4; i++) await c.reply();
    for (let i = 0; i < 5; i++) {
      c.send(`line ${i}\r\n`);
      await Bun.sleep(250); // 1.25 s in all, each gap under the 400 ms bound
    }
    c.send(".\r\n");
    expect(await c.reply()).toStartWith("250");
    c.send("QUIT\r\n");
    expect(await c.reply()).toStartWith("221");
    await eventually(() => sink.messages().length > before, 5000, "message at the sink");
  });
});

describe("the access log's rcpt", () => {
  test("counts the recipients the backend accepted, not one another route serves (451)", async () => {
    const since = proxy.accessLog().length;
    const r = await swaks(proxy.port, ["--pipeline", "--from", "s@x.test", "--to", "e@m.example,f@o.example,g@m.example", "--helo", "swaks.test"]);
    expect(r.exitCode).toBe(0);
    expect(r.output).toContain("(rcpt_other_route)");
    await eventually(() => proxy.accessLog().slice(since).some((l) => l.ehlo === "swaks.test"), 5000, "swaks's record");
    expect(proxy.accessLog().slice(since).find((l) => l.ehlo === "swaks.test")).toMatchObject({ reason: "done", route: "main", rcptDomain: "m.example", rcpt: 2 });
  });
});

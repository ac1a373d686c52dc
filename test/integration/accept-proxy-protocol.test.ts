/**
 * Listener `acceptProxyProtocol` with real peers on loopback: HAProxy 2.6 in TCP mode in front
 * (`send-proxy-v2` and `send-proxy`), clients bound to other loopback addresses (socat, swaks), so
 * the address in the header differs from the peer's; behind switchyard a recording backend that
 * reads the header switchyard sends on, and Postfix's smtpd with smtpd_upstream_proxy_protocol.
 * Raw clients for what HAProxy never sends: a header with a ClientHello in one write, a header in
 * pieces, no header, garbage, silence.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { startProxy, writeConfig, eventually, tempDir, type RunningProxy } from "../helpers/proxy.ts";
import { serve, connect, freePort, type Server } from "../helpers/peers.ts";
import { fixture } from "../helpers/fixtures.ts";
import { parseProxyHeader } from "../../src/proxy-protocol/parse.ts";
import { encodeProxyHeader } from "../../src/proxy-protocol/encode.ts";
import { parseIp } from "../../src/net/ip.ts";
import { postfixAvailable, startPostfix, swaks, type PostfixInstance } from "../helpers/smtp-peers.ts";

const HELLO = fixture("hello-openssl"); // openssl s_client -servername api.example.com
const haproxyAvailable = Bun.which("haproxy") !== null && Bun.which("socat") !== null;

let received: Uint8Array[][] = [];
let recorder: Server;
let proxy: RunningProxy;
let haproxy: Subprocess | null = null;
let postfix: PostfixInstance | null = null;
let adminPort = 0;
const front = { v2: 0, v1: 0, mx: 0 };

const portOf = (i: number) => Number(proxy.addresses[i]!.slice(proxy.addresses[i]!.lastIndexOf(":") + 1));
const L = { tcp: 0, mx: 1, tls: 2, untrusted: 3 };

beforeAll(async () => {
  recorder = serve({
    open(s: any) { s.data = received.push([]) - 1; },
    data(s: any, d: Uint8Array) { received[s.data]!.push(new Uint8Array(d)); },
    end(s: any) { s.end(); },
  } as any);
  if (postfixAvailable()) postfix = await startPostfix("xc.example");
  const up = [`127.0.0.1:${recorder.port}`];
  const trusted = { from: ["127.0.0.1/32"] };
  proxy = await startProxy(["serve", "-c", writeConfig({
    relay: "userspace", admin: { listen: "127.0.0.1:0" }, log: { access: "stdout" },
    listeners: [
      { name: "tcp-in", listen: "127.0.0.1:0", acceptProxyProtocol: trusted, handshakeTimeoutMs: 600, protection: { blocklist: ["127.0.0.11/32"] },
        routes: [{ name: "ten", match: { clientCidr: "127.0.0.10/32" }, upstreams: up, proxyProtocol: "v1" }, { name: "other", upstreams: up, proxyProtocol: "v2" }] },
      { name: "mx-in", listen: "127.0.0.1:0", protocol: "smtp", acceptProxyProtocol: trusted, smtp: { hostname: "mx.test" },
        routes: [{ upstreams: [`127.0.0.1:${postfix?.proxyPort ?? recorder.port}`], proxyProtocol: "v2" }] },
      { name: "tls-in", listen: "127.0.0.1:0", protocol: "tls", acceptProxyProtocol: trusted, routes: [{ match: { sni: "api.example.com" }, upstreams: up }] },
      { name: "untrusted", listen: "127.0.0.1:0", acceptProxyProtocol: { from: ["127.0.0.2/32"] }, routes: [{ upstreams: up }] },
    ],
  })]);
  adminPort = Number(/admin API listening address=http:\/\/127\.0\.0\.1:(\d+)/.exec(proxy.stderr())![1]);
  if (!haproxyAvailable) return;
  front.v2 = freePort();
  front.v1 = freePort();
  front.mx = freePort();
  const cfg = join(tempDir("switchyard-haproxy-"), "haproxy.cfg");
  writeFileSync(cfg, [
    "defaults", "  mode tcp", "  timeout connect 2s", "  timeout client 10s", "  timeout server 10s",
    `frontend v2`, `  bind 127.0.0.1:${front.v2}`, "  default_backend v2",
    `frontend v1`, `  bind 127.0.0.1:${front.v1}`, "  default_backend v1",
    `frontend mx`, `  bind 127.0.0.1:${front.mx}`, "  default_backend mx",
    "backend v2", `  server s 127.0.0.1:${portOf(L.tcp)} send-proxy-v2`,
    "backend v1", `  server s 127.0.0.1:${portOf(L.tcp)} send-proxy`,
    "backend mx", `  server s 127.0.0.1:${portOf(L.mx)} send-proxy-v2`, "",
  ].join("\n"));
  haproxy = Bun.spawn(["haproxy", "-db", "-f", cfg], { stdout: "ignore", stderr: "pipe" });
  await eventually(() => {
    const s = Bun.spawnSync(["socat", "-u", "/dev/null", `TCP:127.0.0.1:${front.mx},connect-timeout=1`]);
    return s.exitCode === 0;
  }, 10_000, "haproxy listening");
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  if (haproxy && haproxy.exitCode === null) process.kill(haproxy.pid, "SIGTERM");
  await haproxy?.exited;
  await postfix?.stop();
  recorder?.stop();
});

/** socat from `bindIp` to `port`, sending `text` and waiting up to 1 s for the far side. */
function socatFrom(bindIp: string, port: number, text: string): Promise<number> {
  const p = Bun.spawn(["socat", "-t1", "-", `TCP:127.0.0.1:${port},bind=${bindIp}`], { stdin: new TextEncoder().encode(text), stdout: "ignore", stderr: "ignore" });
  return p.exited;
}

async function nextRecorded(before: number, minBytes: number): Promise<Uint8Array> {
  await eventually(() => received.length > before && Buffer.concat(received[before]!).length >= minBytes, 5000, "bytes at the recorder");
  await Bun.sleep(50);
  return Buffer.concat(received[before]!);
}

const log = (f: (l: Record<string, unknown>) => boolean) => eventually(() => proxy.accessLog().some(f), 5000, "access log record");

describe.skipIf(!haproxyAvailable)("HAProxy in front", () => {
  test("send-proxy-v2: the client's address routes (clientCidr), is logged, and is sent on in the route's header", async () => {
    const before = received.length;
    await socatFrom("127.0.0.10", front.v2, "ping\r\n");
    const got = await nextRecorded(before, 6);
    const h = parseProxyHeader(got);
    if (h.kind !== "header") throw new Error(`no header: ${JSON.stringify(h)}`);
    expect(h.version).toBe(1); // route "ten" (clientCidr 127.0.0.10/32) sends v1
    expect(h.src!.ip).toBe("127.0.0.10");
    // The address the client connected to is HAProxy's frontend, as its header said.
    expect(h.dst).toMatchObject({ ip: "127.0.0.1", port: front.v2 });
    expect(Buffer.from(got.subarray(h.length)).toString()).toBe("ping\r\n");
    await log((l) => l.listener === "tcp-in" && l.route === "ten" && String(l.client).startsWith("127.0.0.10:"));
  });

  test("send-proxy (v1): the same, another route by address", async () => {
    const before = received.length;
    await socatFrom("127.0.0.12", front.v1, "pong\r\n");
    const got = await nextRecorded(before, 6);
    const h = parseProxyHeader(got);
    if (h.kind !== "header") throw new Error(`no header: ${JSON.stringify(h)}`);
    expect(h.version).toBe(2); // route "other"
    expect(h.src!.ip).toBe("127.0.0.12");
    expect(h.dst).toMatchObject({ ip: "127.0.0.1", port: front.v1 });
    await log((l) => l.listener === "tcp-in" && l.route === "other" && String(l.client).startsWith("127.0.0.12:"));
  });

  test("the gate judges the client in the header, not the proxy", async () => {
    const before = received.length;
    await socatFrom("127.0.0.11", front.v2, "ping\r\n");
    await log((l) => l.listener === "tcp-in" && l.reason === "cidr_blocklist" && String(l.client).startsWith("127.0.0.11:"));
    expect(received.length).toBe(before);
  });

  test.skipIf(!postfixAvailable())("smtp: swaks → HAProxy → switchyard → Postfix, whose log names swaks's address", async () => {
    const r = await swaks(front.mx, ["--from", "s@x.test", "--to", "x@xc.example", "--helo", "client.test", "--local-interface", "127.0.0.13"]);
    expect(r.exitCode).toBe(0);
    expect(r.output).toContain("<-  220 mx.test ESMTP");
    await eventually(() => /disconnect from unknown\[127\.0\.0\.13\] ehlo=1 mail=1 rcpt=1 data=1 quit=1/.test(postfix!.log()), 10_000, "postfix log");
    await log((l) => l.listener === "mx-in" && l.reason === "done" && String(l.client).startsWith("127.0.0.13:"));
  }, 30_000);
});

describe("raw clients of a listener with acceptProxyProtocol", () => {
  const header = (ip: string, port: number) => encodeProxyHeader("v2", { ip: parseIp(ip)!, port }, { ip: parseIp("192.0.2.1")!, port: 443 });

  test("tls: a header and the ClientHello in one write; the hello is read, routed by SNI and passed through whole", async () => {
    const before = received.length;
    const c = await connect(portOf(L.tls));
    c.socket.write(Buffer.concat([header("192.0.2.7", 4444), HELLO]));
    const got = await nextRecorded(before, HELLO.length);
    expect(got).toEqual(HELLO);
    c.socket.end();
    await log((l) => l.listener === "tls-in" && l.client === "192.0.2.7:4444" && l.sni === "api.example.com");
  });

  test("a header in pieces, then the client's bytes", async () => {
    const before = received.length;
    const c = await connect(portOf(L.tcp));
    const h = header("198.51.100.9", 5555);
    for (const piece of [h.subarray(0, 5), h.subarray(5, 14), h.subarray(14)]) {
      c.socket.write(piece);
      await Bun.sleep(40);
    }
    c.socket.write("data\r\n");
    const got = await nextRecorded(before, 6);
    const sent = parseProxyHeader(got);
    if (sent.kind !== "header") throw new Error("no header sent on");
    expect(sent.src).toMatchObject({ ip: "198.51.100.9", port: 5555 });
    expect(sent.dst).toMatchObject({ ip: "192.0.2.1", port: 443 });
    expect(Buffer.from(got.subarray(sent.length)).toString()).toBe("data\r\n");
    c.socket.end();
  });

  test("not a header from a trusted peer: closed, the reason logged and counted", async () => {
    const before = received.length;
    const c = await connect(portOf(L.tcp));
    c.socket.write("ping\r\n");
    await c.closed;
    await log((l) => l.listener === "tcp-in" && l.reason === "bad_proxy_header");
    expect(proxy.stderr()).toMatch(/connection closed: bad_proxy_header.*not_proxy_header/);
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    expect(metrics).toMatch(/switchyard_refused_total\{listener="tcp-in",protocol="tcp",reason="bad_proxy_header"\} [1-9]/);
    expect(received.length).toBe(before);
  });

  test("a v1 header with a bad port: closed with its reason", async () => {
    const c = await connect(portOf(L.tcp));
    c.socket.write("PROXY TCP4 1.2.3.4 5.6.7.8 99999 25\r\n");
    await c.closed;
    await eventually(() => /bad_proxy_header.*v1_bad_port/.test(proxy.stderr()), 5000, "log");
  });

  test("silence: closed after handshakeTimeoutMs with proxy_header_timeout", async () => {
    const c = await connect(portOf(L.tcp));
    const t0 = performance.now();
    await c.closed;
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThan(500);
    expect(ms).toBeLessThan(3000);
    await log((l) => l.listener === "tcp-in" && l.reason === "proxy_header_timeout");
  });

  test("a peer not in from sends no header: its bytes are relayed as they are", async () => {
    const before = received.length;
    const c = await connect(portOf(L.untrusted));
    c.socket.write(Buffer.concat([header("192.0.2.99", 1), new TextEncoder().encode("x")]));
    const got = await nextRecorded(before, 29);
    expect(got).toEqual(Buffer.concat([header("192.0.2.99", 1), new TextEncoder().encode("x")]));
    c.socket.end();
    await log((l) => l.listener === "untrusted" && String(l.client).startsWith("127.0.0.1:"));
  });
});

/**
 * Upgrades on proxy routes: python3-websockets (test/helpers/ws-peer.py) as client and server through
 * the http listener. The 101 from the upstream turns the connection into a relay both ways (text,
 * an 8 MiB binary message, 200 messages in flight, the closing handshake); the access log has one
 * record with status 101. An upstream that declines (nginx answers 200) leaves an ordinary exchange
 * and the connection goes on; an upgrade with a body, an HTTP/1.0 one and CONNECT get 501. And wss://
 * through a tls listener that ends TLS and chains into the http listener.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { eventually, startProxy, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { startNginx, type Nginx } from "../helpers/nginx.ts";
import { makePki } from "../helpers/certs.ts";

const PEER = join(import.meta.dir, "../helpers/ws-peer.py");
const dec = new TextDecoder();
let wsServer: Subprocess;
let nginx: Nginx;
let proxy: RunningProxy;
let wsPort = 0;

beforeAll(async () => {
  wsServer = Bun.spawn(["/usr/bin/python3", PEER, "server"], { stdout: "pipe", stderr: "inherit" });
  const reader = (wsServer.stdout as ReadableStream<Uint8Array>).getReader();
  wsPort = Number(dec.decode((await reader.read()).value).trim());
  reader.releaseLock();
  nginx = await startNginx("plain");
  proxy = await startProxy(["serve", "-c", writeConfig({
    log: { access: "stdout" },
    listeners: [{ name: "web", listen: "127.0.0.1:0", protocol: "http",
      routes: [
        { name: "declines", match: { host: "nginx.test" }, upstreams: [`127.0.0.1:${nginx.port}`] },
        { name: "ws", upstreams: [`127.0.0.1:${wsPort}`] },
      ] }],
  })]);
});

afterAll(async () => {
  await proxy?.stop();
  await nginx?.stop();
  if (wsServer && wsServer.exitCode === null) {
    process.kill(wsServer.pid, "SIGTERM");
    await wsServer.exited;
  }
});

test("a WebSocket through the proxy: 101, then a relay both ways until the closing handshake", async () => {
  const client = Bun.spawn(["/usr/bin/python3", PEER, "client", String(proxy.port)], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => client.kill("SIGKILL"), 60_000);
  const [out, err, code] = await Promise.all([new Response(client.stdout).text(), new Response(client.stderr).text(), client.exited]);
  clearTimeout(timer);
  expect(`${code} ${out.trim()} ${err.trim()}`.trim()).toBe("0 ok text binary-8MiB ordered-200 close-1000");
  await eventually(() => proxy.accessLog().some((r) => r.route === "ws"), 5000, "the tunnel's record");
  const record = proxy.accessLog().find((r) => r.route === "ws")!;
  expect(record).toMatchObject({ status: 101, method: "GET", path: "/ws", reason: "done" });
  expect(record.bytesIn as number).toBeGreaterThan(8 * 1024 * 1024);
  expect(record.bytesOut as number).toBeGreaterThan(8 * 1024 * 1024);
});

/** Raw exchange (latin1 both ways): send, read until `done(text)` or the close. */
async function raw(bytes: string, done: (text: string) => boolean = () => false): Promise<string> {
  let got = "";
  const finished = Promise.withResolvers<string>();
  const s = await Bun.connect({ hostname: "127.0.0.1", port: proxy.port, socket: {
    data(_s, d) { got += Buffer.from(d).toString("latin1"); if (done(got)) finished.resolve(got); },
    close() { finished.resolve(got); },
  } });
  s.write(Buffer.from(bytes, "latin1"));
  const text = await finished.promise;
  s.end();
  return text;
}

const UPGRADE = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

test("the 101 is relayed with Upgrade and Connection: upgrade; the tunnel carries the bytes as they are", async () => {
  // A hand-made client frame after the head: a masked text frame "hi" (RFC 6455 §5.2), echoed unmasked by the server.
  const frame = String.fromCharCode(0x81, 0x82, 1, 2, 3, 4, "h".charCodeAt(0) ^ 1, "i".charCodeAt(0) ^ 2);
  const text = await raw(`GET /ws HTTP/1.1\r\nHost: ws.test\r\n${UPGRADE}\r\n${frame}`, (t) => t.endsWith("\x81\x02hi"));
  expect(text).toStartWith("HTTP/1.1 101 Switching Protocols\r\n");
  const head = text.slice(0, text.indexOf("\r\n\r\n") + 4);
  expect(head).toMatch(/\r\nUpgrade: websocket\r\n/i);
  expect(head).toContain("\r\nConnection: upgrade\r\n");
  expect(head).toContain("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"); // RFC 6455 §1.3's example key
  expect(text.slice(head.length)).toBe("\x81\x02hi");
});

test("an upstream that declines the upgrade: an ordinary response, and the connection goes on", async () => {
  const text = await raw(`GET /up HTTP/1.1\r\nHost: nginx.test\r\n${UPGRADE}\r\nGET /next HTTP/1.1\r\nHost: nginx.test\r\nConnection: close\r\n\r\n`);
  expect(text).toStartWith("HTTP/1.1 200 OK\r\n");
  expect(text).toContain("plain GET /up\n");
  expect(text).toEndWith("plain GET /next\n");
});

test("an upgrade with a body, an HTTP/1.0 upgrade and CONNECT get 501", async () => {
  expect(await raw(`POST /ws HTTP/1.1\r\nHost: ws.test\r\n${UPGRADE}Content-Length: 2\r\n\r\nhi`)).toStartWith("HTTP/1.1 501 Not Implemented\r\n");
  expect(await raw(`GET /ws HTTP/1.0\r\nHost: ws.test\r\n${UPGRADE}\r\n`)).toContain("upgrade_not_supported");
  expect(await raw("CONNECT ws.test:443 HTTP/1.1\r\nHost: ws.test:443\r\n\r\n")).toContain("501 Not Implemented: connect_not_supported");
});

test("wss:// through a tls listener chained into the http listener: the tunnel runs inside the TLS", async () => {
  const pki = makePki();
  const tls = await startProxy(["serve", "-c", writeConfig({
    log: { access: "stdout" },
    listeners: [
      { name: "edge", listen: "127.0.0.1:0", protocol: "tls", defaultCert: pki.issue("edge", ["ws.test"]),
        routes: [{ name: "https", terminateTls: true, upstreams: [{ listener: "web" }] }] },
      { name: "web", listen: [], protocol: "http", routes: [{ name: "ws", upstreams: [`127.0.0.1:${wsPort}`] }] },
    ],
  })]);
  try {
    const client = Bun.spawn(["/usr/bin/python3", PEER, "client", String(tls.port), pki.ca, "ws.test"], { stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => client.kill("SIGKILL"), 60_000);
    const [out, err, code] = await Promise.all([new Response(client.stdout).text(), new Response(client.stderr).text(), client.exited]);
    clearTimeout(timer);
    expect(`${code} ${out.trim()} ${err.trim()}`.trim()).toBe("0 ok text binary-8MiB ordered-200 close-1000");
    await eventually(() => tls.accessLog().some((r) => r.route === "ws"), 5000, "the tunnel's record");
    expect(tls.accessLog().find((r) => r.route === "ws")).toMatchObject({ listener: "web", status: 101, sni: "ws.test", tls: "terminate" });
  } finally {
    await tls.stop();
  }
});

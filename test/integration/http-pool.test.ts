/**
 * The http listener's upstream pool against real peers: connections reused across client
 * connections within maxIdle, and the one retry for a pooled connection the upstream closed just as
 * a request arrived (idempotent, bodiless requests only; never one with a body).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Socket } from "bun";
import { eventually, startProxy, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { freePort, startNginx, type Nginx } from "../helpers/nginx.ts";
import { serve, type Server } from "../helpers/peers.ts";

const dec = new TextDecoder();
let nginx: Nginx;
/** Answers the first request on each connection, then closes the connection when the next one comes. */
let oneShot: Server;
let oneShotConnections = 0;
let proxy: RunningProxy;
// At least the clients' concurrency: below it, connections given back beyond maxIdle are closed and dialled again (churn).
const MAX_IDLE = 10;

beforeAll(async () => {
  nginx = await startNginx("pooled");
  oneShot = serve({
    open(s: Socket<any>) { s.data = { answered: false }; oneShotConnections++; },
    data(s: Socket<any>, d: Uint8Array) {
      if (s.data.answered) return void s.end(); // as if its idle timer fired just as the request came
      if (!dec.decode(d).includes("\r\n\r\n")) return;
      s.data.answered = true;
      s.write("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
    },
  } as any);
  const config = writeConfig({
    log: { access: "stdout" },
    listeners: [{
      name: "web", listen: "127.0.0.1:0", protocol: "http",
      routes: [
        { name: "nginx", match: { host: "n.test" }, upstreams: [`127.0.0.1:${nginx.port}`], pool: { maxIdle: MAX_IDLE, idleTimeoutMs: 30000 } },
        { name: "oneshot", match: { host: "o.test" }, upstreams: [`127.0.0.1:${oneShot.port}`] },
      ],
    }],
  });
  proxy = await startProxy(["serve", "-c", config]);
});

afterAll(async () => {
  await proxy?.stop();
  await nginx?.stop();
  oneShot?.stop();
});

/** `n` requests in turn on one keep-alive connection; resolves with the bodies. */
async function keepAliveClient(n: number, host: string, path = "/"): Promise<string[]> {
  const bodies: string[] = [];
  let buf = "";
  let wake: (() => void) | null = null;
  const s = await Bun.connect({ hostname: "127.0.0.1", port: proxy.port, socket: { data(_s, d) { buf += dec.decode(d); wake?.(); } } });
  for (let i = 0; i < n; i++) {
    s.write(`GET ${path}${i} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    for (;;) {
      const m = /^HTTP\/1\.1 (\d+)[^\r]*\r\n((?:[^\r]+\r\n)*)\r\n/.exec(buf);
      const len = m ? Number(/content-length: (\d+)/i.exec(m[2]!)?.[1] ?? 0) : -1;
      if (m && buf.length >= m[0].length + len) {
        bodies.push(buf.slice(m[0].length, m[0].length + len));
        buf = buf.slice(m[0].length + len);
        break;
      }
      await new Promise<void>((r) => (wake = r));
    }
  }
  s.end();
  return bodies;
}

test("1000 requests over 10 client connections reach nginx over at most maxIdle + 10 connections", async () => {
  const results = await Promise.all(Array.from({ length: 10 }, () => keepAliveClient(100, "n.test", "/r")));
  expect(results.flat()).toHaveLength(1000);
  for (const bodies of results) expect(bodies[99]).toBe("pooled GET /r99\n");
  await eventually(() => nginx.requests().length >= 1000, 5000, "nginx logged 1000 requests");
  const peers = new Set(nginx.requests().map((l) => l.split("peer=")[1]));
  expect(peers.size).toBeLessThanOrEqual(MAX_IDLE + 10);
  await eventually(() => proxy.accessLog().filter((r) => r.route === "nginx").length >= 1000, 5000, "1000 records");
  const reused = proxy.accessLog().filter((r) => r.route === "nginx" && r.reused === true).length;
  expect(reused).toBeGreaterThanOrEqual(1000 - MAX_IDLE - 10);
});

test("a GET on a pooled connection the upstream closed is sent again once, on a new connection", async () => {
  const before = oneShotConnections;
  const [first] = await keepAliveClient(1, "o.test", "/a"); // leaves one idle pooled connection
  expect(first).toBe("ok\n");
  const [second] = await keepAliveClient(1, "o.test", "/b"); // that connection closes under it
  expect(second).toBe("ok\n");
  expect(oneShotConnections - before).toBe(2);
  await eventually(() => proxy.accessLog().filter((r) => r.route === "oneshot").length >= 2, 5000, "records");
  const last = proxy.accessLog().filter((r) => r.route === "oneshot").at(-1)!;
  expect([last.status, last.reason, last.reused]).toEqual([200, "done", false]);
});

test("a POST with a body on such a connection is not sent again: 502", async () => {
  await keepAliveClient(1, "o.test", "/warm");
  const before = oneShotConnections;
  const s = await Bun.connect({ hostname: "127.0.0.1", port: proxy.port, socket: { data(_s, d) { got += dec.decode(d); } } });
  let got = "";
  s.write("POST /pay HTTP/1.1\r\nHost: o.test\r\nContent-Length: 5\r\n\r\nhello");
  await eventually(() => got.includes("\r\n\r\n") && got.includes("upstream_closed"), 5000, "the 502");
  s.end();
  expect(got).toStartWith("HTTP/1.1 502 Bad Gateway");
  expect(oneShotConnections).toBe(before); // no new connection: nothing was sent again
});

test("`switchyard serve http` with the reference proxy's HTTP_* variables and no file is a working HTTP proxy", async () => {
  const port = freePort();
  const p = await startProxy(["serve", "http"], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HTTP_PORT: String(port), HTTP_BACKEND_ENDPOINT: `127.0.0.1:${nginx.port}`, HTTP_BACKEND_POOL_SIZE: "8", HTTP_WORKERS: "1" },
  });
  try {
    const r = Bun.spawn(["curl", "-sS", "--max-time", "10", `http://127.0.0.1:${port}/env`, "--next", `http://127.0.0.1:${port}/env2`], { stdout: "pipe" });
    expect(await new Response(r.stdout).text()).toBe("pooled GET /env\npooled GET /env2\n");
  } finally {
    await p.stop();
  }
});

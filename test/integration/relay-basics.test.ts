/**
 * The userspace TCP relay against real sockets on loopback: half-close, many concurrent
 * connections, the idle timeout, counters, IPv6 and unix listeners.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startProxy, writeConfig, tempDir, eventually, metricsJson, type RunningProxy } from "../helpers/proxy.ts";
import { connect, echoServer, serve, writeAll, type Server } from "../helpers/peers.ts";
import { join } from "node:path";

let echo: Server;
let proxy: RunningProxy;

beforeAll(async () => {
  echo = echoServer();
  proxy = await startProxy(["serve", "--relay", "userspace", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${echo.port}`]);
});
afterAll(async () => {
  await proxy?.stop();
  echo?.stop();
});

describe("relay", () => {
  test("bytes go both ways unchanged", async () => {
    const c = await connect(proxy.port);
    await writeAll(c.socket, new TextEncoder().encode("hello through switchyard"));
    await eventually(() => c.receivedText() === "hello through switchyard", 5000, "echo");
    c.socket.end();
    expect((await c.closed).error).toBeNull();
  });

  test("half-close: the client shuts its write side and still receives the backend's answer", async () => {
    // The backend answers only after the client's FIN, then closes.
    const backend = serve({
      open(s: any) { s.data = { got: "" }; },
      data(s: any, d: Uint8Array) { s.data.got += Buffer.from(d).toString(); },
      end(s: any) { s.write(`got ${s.data.got.length} bytes: ${s.data.got}`); s.end(); },
    } as any);
    const p = await startProxy(["serve", "--relay", "userspace", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${backend.port}`]);
    try {
      const c = await connect(p.port);
      c.socket.write("ping");
      c.socket.shutdown();
      const { error } = await c.closed;
      expect(error).toBeNull();
      expect(c.receivedText()).toBe("got 4 bytes: ping");
      await eventually(() => p.accessLog().length === 1, 5000, "access log");
      expect(p.accessLog()[0]).toMatchObject({ reason: "done", bytesIn: 4, bytesOut: 17, relay: "userspace", tls: "none" });
    } finally {
      await p.stop();
      backend.stop();
    }
  });

  test("2000 concurrent connections each do request/response with every byte correct", async () => {
    const N = 2000;
    const clients = await Promise.all(Array.from({ length: N }, () => connect(proxy.port)));
    const payloads = clients.map((_, i) => `request ${i} `.repeat(1 + (i % 50)));
    for (const [i, c] of clients.entries()) c.socket.write(payloads[i]!);
    await eventually(() => clients.every((c, i) => c.received().length === payloads[i]!.length), 30_000, "all echoes");
    clients.forEach((c, i) => expect(c.receivedText()).toBe(payloads[i]!));
    for (const c of clients) c.socket.end();
    await Promise.all(clients.map((c) => c.closed));
  }, 60_000);

  test("idle timeout is per read, not a cap on the connection's life", async () => {
    const p = await startProxy(["serve", "--relay", "userspace", "-c", writeConfig({
      log: { access: "stdout" },
      listeners: [{ name: "t", listen: ["127.0.0.1:0"], idleTimeoutMs: 400, routes: [{ upstreams: [`127.0.0.1:${echo.port}`] }] }],
    })]);
    try {
      const busy = await connect(p.port);
      const idle = await connect(p.port);
      // The busy connection talks every 100 ms for 1.2 s: three times the idle timeout.
      for (let i = 0; i < 12; i++) {
        busy.socket.write("x");
        await Bun.sleep(100);
      }
      expect((await idle.closed).error).toBeNull();
      expect(busy.received().length).toBeGreaterThanOrEqual(11);
      busy.socket.end();
      await busy.closed;
      await eventually(() => p.accessLog().length === 2, 5000, "access log");
      const reasons = p.accessLog().map((r) => r.reason).sort();
      expect(reasons).toEqual(["done", "idle_timeout"]);
    } finally {
      await p.stop();
    }
  });

  test("counters per listener and route match the traffic sent", async () => {
    const dir = tempDir();
    const p = await startProxy(["serve", "--relay", "userspace", "-c", writeConfig({
      admin: { listen: "127.0.0.1:0" },
      log: { access: "off" },
      listeners: [{ name: "counted", listen: ["127.0.0.1:0"], routes: [{ name: "echo", upstreams: [`127.0.0.1:${echo.port}`] }] }],
    }, dir)]);
    try {
      const adminPort = Number(/admin API listening address=http:\/\/127\.0\.0\.1:(\d+)/.exec(p.stderr())![1]);
      const sizes = [10, 1000, 100_000];
      for (const size of sizes) {
        const c = await connect(p.port);
        await writeAll(c.socket, new Uint8Array(size).fill(65));
        await eventually(() => c.received().length === size, 5000, "echo");
        c.socket.end();
        await c.closed;
      }
      const total = sizes.reduce((a, b) => a + b, 0);
      await eventually(() => true);
      let m: any;
      await eventually(() => false, 0).catch(() => {});
      for (let i = 0; i < 50; i++) {
        m = await metricsJson(adminPort);
        if (m.listeners.counted.active === 0) break;
        await Bun.sleep(20);
      }
      expect(m.listeners.counted).toMatchObject({ active: 0, total: 3, bytesIn: total, bytesOut: total, closes: { done: 3 } });
      expect(m.routes["counted/echo"]).toMatchObject({ total: 3, bytesIn: total });
      const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
      expect(text).toContain(`switchyard_bytes_in_total{listener="counted",route="echo"} ${total}`);
      expect(text).toContain(`switchyard_connections_closed_total{listener="counted",route="echo",reason="done"} 3`);
    } finally {
      await p.stop();
    }
  });

  test("one listener on IPv4, IPv6 and a unix socket at once", async () => {
    const dir = tempDir();
    const unixPath = join(dir, "sy.sock");
    const p = await startProxy(["serve", "--relay", "userspace", "--listen", "127.0.0.1:0", "--listen", "[::1]:0", "--listen", `unix:${unixPath}`, "--backend", `127.0.0.1:${echo.port}`]);
    try {
      expect(p.addresses).toHaveLength(3);
      const v6port = Number(p.addresses[1]!.split(":").pop());
      for (const [host, port] of [["127.0.0.1", p.port], ["::1", v6port]] as const) {
        const c = await connect(port, host);
        c.socket.write(`via ${host}`);
        await eventually(() => c.receivedText() === `via ${host}`, 5000, `echo via ${host}`);
        c.socket.end();
        await c.closed;
      }
      let got = "";
      const u = await Bun.connect({ unix: unixPath, socket: { data(_s, d) { got += Buffer.from(d).toString(); } } });
      u.write("via unix");
      await eventually(() => got === "via unix", 5000, "echo via unix");
      u.end();
    } finally {
      await p.stop();
    }
  });
});
